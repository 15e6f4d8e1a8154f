#if canImport(Glibc)
import Glibc
#endif

// How a blocking handler's read or write waits: in the kernel when it can, as a socketserver handler's
// blocking socket does (one `recv` per read, the thread sleeping in it), else with `poll(2)`.

extension StreamRequest {
    /// Sets the socket up for a read. It waits in the kernel (blocking, `SO_RCVTIMEO` at the shortest of
    /// `idleTimeout` and `readTimeout`) when there is no lifetime deadline (whose remaining time shrinks
    /// with each wait) and either no timeout at all or a read already had to wait: a connection that
    /// waits for its client again and again (ping-pong) then makes one `recv` per read instead of `recv` +
    /// `poll` + `recv`, and one that reads once and goes (churn) is spared the `fcntl`s and `setsockopt`.
    /// Sets only what changed since the last call.
    func prepareToRead() throws(ConnectionError) {
        let bound = min(idleTimeout ?? .infinity, readTimeout ?? .infinity)
        // A timeout of 0 is "no timeout" to the kernel: such a bound (and a deadline) is left to `poll`.
        let inKernel = deadline == nil && bound > 0 && (!bound.isFinite || readsPolled > 0)
        if inKernel != blockingIO {
            try mapErrors { try socket.setBlocking(inKernel) }
            blockingIO = inKernel
        }
        let seconds = bound.isFinite ? bound : 0
        guard inKernel, seconds != receiveTimeout else { return }
        try mapErrors { try setReceiveTimeout(seconds) }
        receiveTimeout = seconds
    }

    /// Sets the socket up for a write. - Returns: whether `send` must not wait in the kernel: a write with a
    /// timeout waits with `poll` (the socket may be blocking for reads); without, in `send`.
    func prepareToWrite() throws(ConnectionError) -> Bool {
        guard deadline == nil, idleTimeout == nil, writeTimeout == nil else { return blockingIO }
        if !blockingIO {
            try mapErrors { try socket.setBlocking(true) }
            blockingIO = true
        }
        return false
    }

    private func setReceiveTimeout(_ seconds: Double) throws(SystemError) {
        let whole = seconds.rounded(.down)
        var value = timeval(tv_sec: Int(whole), tv_usec: Int(((seconds - whole) * 1_000_000).rounded(.up)))
        if value.tv_usec >= 1_000_000 { (value.tv_sec, value.tv_usec) = (value.tv_sec + 1, 0) }
        guard setsockopt(socket.descriptor, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size)) == 0
        else { throw SystemError(operation: "setsockopt(SO_RCVTIMEO)", errno: errno) }
    }

    /// After a read or write found nothing to do: for a read on a blocking socket the kernel already waited
    /// the whole timeout; otherwise waits for `events` at most the shortest of `idleTimeout`, the
    /// direction's `limit` and the time left before the lifetime's deadline. Throws `.timedOut` naming the
    /// one that ran out.
    func waitFor(events: CInt, limit: Double?, doing what: String) throws {
        let reading = events == CInt(POLLIN)
        var bound: (seconds: Double, cause: ConnectionSummary.Reason)?
        if let idleTimeout { bound = (idleTimeout, .idleTimeout) }
        if let limit, limit < bound?.seconds ?? .infinity { bound = (limit, reading ? .readTimeout : .writeTimeout) }
        if let deadline, case let remaining = max(0, deadline - MonotonicClock.now),
            remaining < bound?.seconds ?? .infinity {
            bound = (remaining, .lifetime)
        }
        if reading && !blockingIO { readsPolled &+= 1 }
        let waited = reading && blockingIO
        let ready = try !waited && mapErrors { try socket.poll(events: events, timeout: bound?.seconds) }
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
