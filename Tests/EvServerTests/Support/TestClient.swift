import EvServer

#if canImport(Glibc)
import Glibc
#endif

/// A plain blocking client on raw POSIX sockets (no EvServer code), with a receive timeout so that no
/// test can hang on a read.
final class TestClient {
    private(set) var descriptor: CInt

    /// `receiveBuffer`: SO_RCVBUF set before connecting, so the window the client offers is that small from
    /// the first segment (set after the handshake, the kernel keeps the larger window it already offered and
    /// takes more in by trickles).
    init(_ address: SocketAddress, timeout: Double = 10, receiveBuffer: CInt? = nil) throws {
        let (family, initial, length) = rawAddress(address)
        var storage = initial
        descriptor = socket(family, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw TestFailure("socket() failed: errno \(errno)") }
        setTimeouts(descriptor, timeout)
        if var size = receiveBuffer {
            setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<CInt>.size))
        }
        let result = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, length) }
        }
        guard result == 0 else {
            let code = errno
            close(descriptor)
            throw TestFailure("connect to \(address) failed: errno \(code)")
        }
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, CInt(MSG_NOSIGNAL)) }
            guard count > 0 else { throw TestFailure("send failed: errno \(errno)") }
            sent += count
        }
    }

    /// One `recv`; empty at end of input. Throws on timeout.
    func receive(max: Int = 65536) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: max)
        let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        guard count >= 0 else { throw TestFailure("recv failed or timed out: errno \(errno)") }
        return Array(buffer[..<count])
    }

    /// Reads until a newline (included) or end of input.
    func readLine() throws -> String {
        var bytes: [UInt8] = []
        while bytes.last != UInt8(ascii: "\n") {
            let chunk = try receive(max: 1)
            if chunk.isEmpty { break }
            bytes += chunk
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Reads until the server closes; at most `limit` bytes.
    func readToEnd(limit: Int = 1 << 26) throws -> [UInt8] {
        var bytes: [UInt8] = []
        while true {
            let chunk = try receive()
            if chunk.isEmpty { return bytes }
            bytes += chunk
            guard bytes.count <= limit else { throw TestFailure("more than \(limit) bytes") }
        }
    }

    func shutdownWrite() { shutdown(descriptor, CInt(SHUT_WR)) }

    /// How a connection ended, as the client saw it.
    enum Ending: Equatable, CustomStringConvertible {
        /// The server closed it in order (FIN): `recv` returned 0.
        case endOfStream
        /// The server reset it (RST): `ECONNRESET`.
        case reset
        /// Still open when the wait ran out.
        case timedOut
        /// Another error (errno).
        case failed(CInt)
        var description: String {
            switch self {
            case .endOfStream: "end of stream"
            case .reset: "reset"
            case .timedOut: "still open (timed out)"
            case .failed(let code): "failed with errno \(code)"
            }
        }
    }

    /// Waits up to `timeout` seconds for the server to end the connection, reading (and returning) what
    /// arrives meanwhile, and says how it ended: unlike `readToEnd`, a timeout is not mistaken for a close.
    func ending(within timeout: Double = 5) -> (ending: Ending, received: [UInt8]) {
        let deadline = monotonicNow() + timeout
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let remaining = deadline - monotonicNow()
            guard remaining > 0 else { return (.timedOut, received) }
            var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, CInt(max(1, remaining * 1000)))
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, CInt(MSG_DONTWAIT)) }
            if count > 0 {
                received += buffer[..<count]
            } else if count == 0 {
                return (.endOfStream, received)
            } else {
                let code = errno
                if code == EAGAIN || code == EINTR { continue }
                return (code == ECONNRESET ? .reset : .failed(code), received)
            }
        }
    }

    /// Resets the connection (RST, as a crashed client's kernel would): SO_LINGER 0, then close.
    func reset() {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close(descriptor)
        descriptor = -1
    }
}

/// Whether connecting to `address` is refused (nobody listens: `ECONNREFUSED`, or for a Unix path whose
/// file is gone, `ENOENT`). A connect that fails otherwise, or succeeds, is not a refusal.
func connectionRefused(_ address: SocketAddress) -> Bool {
    let (family, initial, length) = rawAddress(address)
    var storage = initial
    let descriptor = socket(family, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
    guard descriptor >= 0 else { return false }
    defer { close(descriptor) }
    let result = withUnsafePointer(to: &storage) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, length) }
    }
    return result != 0 && (errno == ECONNREFUSED || errno == ENOENT)
}

/// `address` as the kernel wants it: family, `sockaddr_storage` and length (built here, not by EvServer).
func rawAddress(_ address: SocketAddress) -> (CInt, sockaddr_storage, socklen_t) {
    var storage = sockaddr_storage()
    if let path = address.unixPath {
        var unix = sockaddr_un()
        unix.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &unix.sun_path) { buffer in
            for (index, byte) in path.utf8.enumerated() { buffer[index] = byte }
        }
        let length = store(unix, in: &storage)
        return (AF_UNIX, storage, length)
    } else if address.host!.contains(":") {
        var v6 = sockaddr_in6()
        v6.sin6_family = sa_family_t(AF_INET6)
        v6.sin6_port = UInt16(address.port!).bigEndian
        inet_pton(AF_INET6, address.host!, &v6.sin6_addr)
        let length = store(v6, in: &storage)
        return (AF_INET6, storage, length)
    } else {
        var v4 = sockaddr_in()
        v4.sin_family = sa_family_t(AF_INET)
        v4.sin_port = UInt16(address.port!).bigEndian
        inet_pton(AF_INET, address.host!, &v4.sin_addr)
        let length = store(v4, in: &storage)
        return (AF_INET, storage, length)
    }
}

/// Receive and send timeouts, so that no test can hang on a socket call.
func setTimeouts(_ descriptor: CInt, _ timeout: Double) {
    var interval = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1e6))
    setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &interval, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &interval, socklen_t(MemoryLayout<timeval>.size))
}

/// Copies a concrete `sockaddr_*` into `storage`; returns its length.
private func store<Address>(_ address: Address, in storage: inout sockaddr_storage) -> socklen_t {
    withUnsafeBytes(of: address) { source in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: source) } }
    return socklen_t(MemoryLayout<Address>.size)
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
