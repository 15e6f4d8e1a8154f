internal import CLibEv

#if canImport(Glibc)
import Glibc
#endif

/// The stream calls on one socket descriptor, as a plain value that owns nothing: what a `Socket` does
/// with its descriptor, for the event-mode connection, which keeps the bare descriptor (a `Socket` object
/// per connection cost an allocation and its release). Whoever holds the value closes the descriptor once.
///
/// Each call captures `errno` at once, retries `EINTR`, reports `EAGAIN` as "would block" and throws a
/// `SystemError` naming the call for anything else, as `Socket` documents.
struct SocketDescriptor {
    /// -1 once closed or taken.
    private(set) var descriptor: CInt

    init(_ descriptor: CInt) { self.descriptor = descriptor }

    /// Closes the descriptor (idempotent; `EINTR` not retried, as `Socket.close()` explains).
    mutating func close() {
        guard descriptor >= 0 else { return }
        _ = Glibc.close(descriptor)
        descriptor = -1
    }

    /// Gives up the descriptor: the caller now must close it.
    mutating func take() -> CInt {
        defer { descriptor = -1 }
        return descriptor
    }

    func setOption(level: CInt, name: CInt, value: CInt, what: String) throws(SystemError) {
        var value = value
        guard setsockopt(descriptor, level, name, &value, socklen_t(MemoryLayout<CInt>.size)) == 0 else {
            throw SystemError(operation: "setsockopt(\(what))", errno: errno)
        }
    }

    /// Reads what is there, up to `buffer.count` bytes; `flags` as `recv` takes them (`MSG_PEEK`).
    @inline(__always)  // out of line it cost ~40 instructions a call on the per-event path
    func read(into buffer: UnsafeMutableRawBufferPointer, flags: CInt = 0) throws(SystemError) -> Socket.ReadResult {
        while true {
            let count = CLibEv_recvfrom(descriptor, buffer.baseAddress, buffer.count, flags, nil, nil)
            if count > 0 { return .bytes(count) }
            if count == 0 { return .endOfFile }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            case let code: throw SystemError(operation: "recv", errno: code)
            }
        }
    }

    /// Sends what the kernel takes now; `nil` when it takes nothing. Never raises SIGPIPE.
    @inline(__always)
    func write(_ bytes: UnsafeRawBufferPointer, neverWait: Bool = false) throws(SystemError) -> Int? {
        let flags = CInt(MSG_NOSIGNAL) | (neverWait ? CInt(MSG_DONTWAIT) : 0)
        while true {
            let count = CLibEv_sendto(descriptor, bytes.baseAddress, bytes.count, flags, nil, 0)
            if count >= 0 { return count }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return nil
            case let code: throw SystemError(operation: "send", errno: code)
            }
        }
    }
}
