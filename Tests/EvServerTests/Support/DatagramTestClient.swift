import EvServer

#if canImport(Glibc)
import Glibc
#endif

/// A plain datagram client on raw POSIX sockets (no EvServer code): UDP, or a Unix datagram socket bound
/// to a path of its own (so the server can reply) unless `bindPath` is false. Receives time out.
final class DatagramTestClient {
    let descriptor: CInt
    /// The Unix path the client bound, if any.
    let path: String?
    private let server: SocketAddress

    init(to server: SocketAddress, bindPath: Bool = true, timeout: Double = 5) throws {
        self.server = server
        let (family, _, _) = rawAddress(server)
        let descriptor = socket(family, CInt(SOCK_DGRAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw TestFailure("socket() failed: errno \(errno)") }
        self.descriptor = descriptor
        setTimeouts(descriptor, timeout)
        if server.isUnix && bindPath {
            let path = temporarySocketPath()
            var (_, storage, length) = rawAddress(try SocketAddress(unixPath: path))
            let result = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
            }
            guard result == 0 else {
                close(descriptor)
                throw TestFailure("bind \(path) failed: errno \(errno)")
            }
            self.path = path
        } else {
            path = nil
        }
    }

    deinit {
        close(descriptor)
        if let path { unlink(path) }
    }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var (_, storage, length) = rawAddress(server)
        let count = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { target in
                bytes.withUnsafeBytes { sendto(descriptor, $0.baseAddress, $0.count, 0, target, length) }
            }
        }
        guard count == bytes.count else { throw TestFailure("sendto failed: errno \(errno)") }
    }

    /// One datagram; throws on timeout.
    func receive(max: Int = 70_000) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: max)
        let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        guard count >= 0 else { throw TestFailure("recv failed or timed out: errno \(errno)") }
        return Array(buffer[..<count])
    }

    func receiveText() throws -> String { String(decoding: try receive(), as: UTF8.self) }

    /// True when a datagram arrives within `seconds`.
    func receivesSomething(within seconds: Double) -> Bool {
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, CInt(seconds * 1000)) > 0
    }
}
