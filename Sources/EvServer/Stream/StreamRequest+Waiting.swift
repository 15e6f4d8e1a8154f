#if canImport(Glibc)
import Glibc
#endif

// How a blocking handler's read or write waits: in the kernel whenever it can, as a socketserver handler's
// blocking socket does (one `recv` per read, the thread sleeping in it), and with `poll(2)` only when the
// connection has a lifetime deadline, whose remaining time shrinks with each wait.

extension StreamRequest {
    /// Sets the socket up for a read (`reading`) or a write: blocking, with `SO_RCVTIMEO` / `SO_SNDTIMEO` at
    /// the shortest of `idleTimeout` and the direction's timeout (none when neither is set), or, with a
    /// lifetime deadline, non-blocking for `waitFor`'s `poll`. Sets only what changed since the last call.
    func prepareToWait(reading: Bool) throws(ConnectionError) {
        let bound = min(idleTimeout ?? .infinity, (reading ? readTimeout : writeTimeout) ?? .infinity)
        // A timeout of 0 is "no timeout" to the kernel: such a bound (and a deadline) is left to `poll`.
        let inKernel = deadline == nil && bound > 0
        if inKernel != blockingIO {
            try mapErrors { try socket.setBlocking(inKernel) }
            blockingIO = inKernel
        }
        guard inKernel else { return }
        let seconds = bound.isFinite ? bound : 0
        guard seconds != (reading ? kernelTimeouts.receive : kernelTimeouts.send) else { return }
        try mapErrors { try setKernelTimeout(seconds, reading: reading) }
        if reading { kernelTimeouts.receive = seconds } else { kernelTimeouts.send = seconds }
    }

    private func setKernelTimeout(_ seconds: Double, reading: Bool) throws(SystemError) {
        let whole = seconds.rounded(.down)
        var value = timeval(tv_sec: Int(whole), tv_usec: Int(((seconds - whole) * 1_000_000).rounded(.up)))
        if value.tv_usec >= 1_000_000 { (value.tv_sec, value.tv_usec) = (value.tv_sec + 1, 0) }
        let (name, what) = reading ? (SO_RCVTIMEO, "SO_RCVTIMEO") : (SO_SNDTIMEO, "SO_SNDTIMEO")
        guard setsockopt(socket.descriptor, SOL_SOCKET, name, &value, socklen_t(MemoryLayout<timeval>.size)) == 0 else {
            throw SystemError(operation: "setsockopt(\(what))", errno: errno)
        }
    }

    /// After a read or write found nothing to do: on a blocking socket the kernel already waited the whole
    /// timeout; otherwise waits for `events` at most the shortest of `idleTimeout`, the direction's `limit`
    /// and the time left before the lifetime's deadline. Throws `.timedOut` naming the one that ran out.
    func waitFor(events: CInt, limit: Double?, doing what: String) throws {
        let reading = events == CInt(POLLIN)
        var bound: (seconds: Double, cause: ConnectionSummary.Reason)?
        if let idleTimeout { bound = (idleTimeout, .idleTimeout) }
        if let limit, limit < bound?.seconds ?? .infinity { bound = (limit, reading ? .readTimeout : .writeTimeout) }
        if let deadline, case let remaining = max(0, deadline - MonotonicClock.now),
            remaining < bound?.seconds ?? .infinity {
            bound = (remaining, .lifetime)
        }
        let ready = try !blockingIO && mapErrors { try socket.poll(events: events, timeout: bound?.seconds) }
        if !ready {
            tally.note(bound?.cause ?? .error)
            let reason = switch bound?.cause ?? .error {  // made only now: waiting must not allocate
            case .idleTimeout: "after \(idleTimeout ?? 0) s idle"
            case .readTimeout, .writeTimeout: "after \(limit ?? 0) s (\(reading ? "read" : "write") timeout)"
            case .lifetime: "at the end of the connection's maximum lifetime"
            default: ""
            }
            throw ConnectionError(.timedOut, "timed out \(what) \(clientAddress) \(reason)")
        }
    }
}
