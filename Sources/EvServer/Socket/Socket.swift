internal import CLibEv

#if canImport(Glibc)
import Glibc
#endif

/// Owns one socket descriptor: non-blocking, close-on-exec, closed exactly once.
///
/// All system calls on it go through here: each captures `errno` at once, retries `EINTR`, reports
/// `EAGAIN` as "would block" (a `nil` or `.wouldBlock` result), and throws a `SystemError` naming the call
/// for anything else. A `Socket` is used by one thread at a time: the loop's, or the worker's it was
/// handed to.
final class Socket {
    private(set) var descriptor: CInt

    /// Takes ownership of `descriptor`.
    init(descriptor: CInt) {
        self.descriptor = descriptor
    }

    /// Opens a new non-blocking, close-on-exec socket.
    convenience init(family: CInt, type: CInt) throws(SystemError) {
        let fd = Glibc.socket(family, type | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError(operation: "socket", errno: errno) }
        self.init(descriptor: fd)
    }

    deinit { close() }

    var isOpen: Bool { descriptor >= 0 }

    /// Closes the descriptor. Idempotent. `EINTR` from close is not retried: on Linux the descriptor is
    /// already gone, and retrying could close a descriptor another thread just opened.
    func close() {
        guard descriptor >= 0 else { return }
        _ = Glibc.close(descriptor)
        descriptor = -1
    }

    /// Gives up ownership: the caller now must close the returned descriptor.
    func takeDescriptor() -> CInt {
        defer { descriptor = -1 }
        return descriptor
    }

    // MARK: Options

    func setOption(level: CInt, name: CInt, value: CInt, what: String) throws(SystemError) {
        try SocketDescriptor(descriptor).setOption(level: level, name: name, value: value, what: what)
    }

    func option(level: CInt, name: CInt, what: String) throws(SystemError) -> CInt {
        var value: CInt = 0
        var length = socklen_t(MemoryLayout<CInt>.size)
        guard getsockopt(descriptor, level, name, &value, &length) == 0 else {
            throw SystemError(operation: "getsockopt(\(what))", errno: errno)
        }
        return value
    }

    // MARK: Listening

    func bind(to address: SocketAddress) throws(SystemError) {
        let result = address.withSockAddr { Glibc.bind(descriptor, $0, $1) }
        guard result == 0 else { throw SystemError(operation: "bind", errno: errno) }
    }

    func listen(backlog: CInt) throws(SystemError) {
        guard Glibc.listen(descriptor, backlog) == 0 else { throw SystemError(operation: "listen", errno: errno) }
    }

    func localAddress() throws(SystemError) -> SocketAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard result == 0 else { throw SystemError(operation: "getsockname", errno: errno) }
        return SocketAddress(storage: &storage, length: length)
    }

    /// Accepts one connection as a new non-blocking, close-on-exec descriptor; `nil` when none is waiting.
    func accept() throws(SystemError) -> (descriptor: CInt, peer: SocketAddress)? {
        var storage = sockaddr_storage()
        while true {
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    CLibEv_accept4(descriptor, $0, &length, CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue))
                }
            }
            if fd >= 0 { return (fd, SocketAddress(storage: &storage, length: length)) }
            switch errno {
            case EINTR, ECONNABORTED: continue
            case EAGAIN, EWOULDBLOCK: return nil
            case let code: throw SystemError(operation: "accept", errno: code)
            }
        }
    }

    /// Makes reads and writes wait in the kernel (`true`) or return "would block" at once (`false`, as
    /// accepted sockets start).
    func setBlocking(_ blocking: Bool) throws(SystemError) {
        let flags = fcntl(descriptor, F_GETFL)
        guard flags >= 0 else { throw SystemError(operation: "fcntl(F_GETFL)", errno: errno) }
        let wanted = blocking ? flags & ~O_NONBLOCK : flags | O_NONBLOCK
        guard wanted == flags || fcntl(descriptor, F_SETFL, wanted) == 0 else {
            throw SystemError(operation: "fcntl(F_SETFL)", errno: errno)
        }
    }

    // MARK: Data

    enum ReadResult: Equatable {
        case bytes(Int)
        case endOfFile
        case wouldBlock
    }

    /// Reads what is there, up to `buffer.count` bytes; `flags` as `recv` takes them (`MSG_PEEK`).
    func read(into buffer: UnsafeMutableRawBufferPointer, flags: CInt = 0) throws(SystemError) -> ReadResult {
        try SocketDescriptor(descriptor).read(into: buffer, flags: flags)
    }

    /// Sends what the kernel takes now; `nil` when it takes nothing. Never raises SIGPIPE.
    func write(_ bytes: UnsafeRawBufferPointer, neverWait: Bool = false) throws(SystemError) -> Int? {
        try SocketDescriptor(descriptor).write(bytes, neverWait: neverWait)
    }

    // MARK: Datagrams

    /// A datagram taken off the socket: its real length (also when it was larger than the buffer, which
    /// then holds only the start) and its sender.
    struct ReceivedDatagram {
        let length: Int
        let truncated: Bool
        let sender: SocketAddress
    }

    /// Takes one datagram; `nil` when none is waiting. `MSG_TRUNC` makes the kernel report the datagram's
    /// real length, so an oversize one is recognised instead of being delivered cut. `storage` is where the
    /// kernel writes the sender's address (the caller's, reused: not a new zeroed one per datagram).
    @inline(__always)
    func receiveDatagram(
        into buffer: UnsafeMutableRawBufferPointer, senderStorage storage: UnsafeMutablePointer<sockaddr_storage>
    ) throws(SystemError) -> ReceivedDatagram? {
        while true {
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let count = storage.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                CLibEv_recvfrom(descriptor, buffer.baseAddress, buffer.count, CInt(MSG_TRUNC), $0, &length)
            }
            if count >= 0 {
                return ReceivedDatagram(
                    length: count, truncated: count > buffer.count,
                    sender: SocketAddress(storage: storage, length: length)
                )
            }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return nil
            case let code: throw SystemError(operation: "recvfrom", errno: code)
            }
        }
    }

    /// Sends one datagram to `address`. - Returns: `false` when the send buffer is full (would block).
    @inline(__always)
    func sendDatagram(_ bytes: UnsafeRawBufferPointer, to address: SocketAddress) throws(SystemError) -> Bool {
        // Read once: a closure reading the property would retain `self` around every call.
        let descriptor = descriptor
        while true {
            let count = address.withSockAddr {
                CLibEv_sendto(descriptor, bytes.baseAddress, bytes.count, CInt(MSG_NOSIGNAL), $0, $1)
            }
            if count >= 0 { return true }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return false
            case let code: throw SystemError(operation: "sendto", errno: code)
            }
        }
    }

    /// Half-closes the connection (`SHUT_WR`: the peer reads end-of-file); errors such as `ENOTCONN` are
    /// ignored, as there is nothing left to do about them.
    func shutdownWrite() {
        _ = Glibc.shutdown(descriptor, CInt(SHUT_WR))
    }

    /// Waits until the descriptor is ready for `events` (`POLLIN`, `POLLOUT`) or `timeout` seconds pass.
    /// - Returns: `false` on timeout.
    func poll(events: CInt, timeout: Double?) throws(SystemError) -> Bool {
        let deadline = timeout.map { MonotonicClock.now + $0 }
        while true {
            var entry = pollfd(fd: descriptor, events: Int16(events), revents: 0)
            let milliseconds =
                deadline.map { CInt(max(0, min(($0 - MonotonicClock.now) * 1000, 86_400_000)).rounded(.up)) } ?? -1
            let result = Glibc.poll(&entry, 1, milliseconds)
            if result > 0 { return true }
            if result == 0 { return false }
            if errno != EINTR { throw SystemError(operation: "poll", errno: errno) }
        }
    }
}
