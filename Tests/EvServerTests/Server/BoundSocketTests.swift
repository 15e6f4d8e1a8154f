import EvServer
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `ServerConfiguration.boundSocket`: a socket bound by someone else (socketserver's
/// `bind_and_activate=False`, a supervisor, systemd) is served instead of binding the address.
@Suite("a socket bound elsewhere")
struct BoundSocketTests {
    /// A TCP socket bound to 127.0.0.1 on a free port, not yet listening, with that port.
    private func boundTCPSocket(type: __socket_type = SOCK_STREAM) throws -> (CInt, Int) {
        let descriptor = socket(AF_INET, CInt(type.rawValue), 0)
        try #require(descriptor >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
            }
        }
        try #require(bound)
        return (descriptor, Int(UInt16(bigEndian: address.sin_port)))
    }

    @Test("a bound socket that is not yet listening is served, in every mode", .timeLimit(.minutes(1)),
          arguments: [ExecutionMode.event, .sync, .thread, .pool(threads: 2, queueLimit: 4), .async])
    func servesABoundSocket(mode: ExecutionMode) throws {
        let (descriptor, port) = try boundTCPSocket()
        var configuration = ServerConfiguration(address: try SocketAddress(host: "127.0.0.1", port: 0), mode: mode)
        configuration.boundSocket = descriptor
        let server = try StreamServer(configuration: configuration, handler: lineEchoHandler(for: mode))
        defer { server.close() }
        #expect(server.localAddress.port == port)
        try server.start()
        let client = try TestClient(server.localAddress)
        try client.send("adopted\n")
        #expect(try client.readLine() == "adopted\n")
    }

    @Test("a descriptor of the wrong kind is refused clearly")
    func refusesTheWrongKind() throws {
        let (descriptor, _) = try boundTCPSocket(type: SOCK_DGRAM)
        var configuration = ServerConfiguration(address: try SocketAddress(host: "127.0.0.1", port: 0), mode: .event)
        configuration.boundSocket = descriptor
        let error = #expect(throws: ServerError.self) {
            try StreamServer(configuration: configuration, handler: lineEchoHandler(for: .event))
        }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("not a stream socket") == true)
    }

    @Test("a restart without downtime: the old server leaves its Unix socket file to the one that took the socket over",
          .timeLimit(.minutes(1)))
    func handsTheSocketFileOver() throws {
        let path = "/tmp/evs-handover-\(getpid()).sock"
        let address = try SocketAddress(unixPath: path)
        let old = try makeServer(address, handler: lineEchoHandler(for: .event), start: true)
        var configuration = ServerConfiguration(address: address, mode: .event)
        configuration.boundSocket = fcntl(old.descriptor, F_DUPFD_CLOEXEC, 0)
        configuration.ownsBoundSocketFile = true
        let successor = try StreamServer(configuration: configuration, handler: lineEchoHandler(for: .event))
        defer { successor.close() }
        try successor.start()
        old.handOverSocketFile()
        old.shutdownGracefully(timeout: 5)
        #expect(access(path, F_OK) == 0, "the old server left the file")
        let client = try TestClient(address)
        try client.send("still here\n")
        #expect(try client.readLine() == "still here\n")
        successor.close()
        #expect(access(path, F_OK) != 0, "the server that took the file over removed it")
    }

    @Test("without the hand-over, closing the server that bound the path removes its file, and an adopter does not")
    func keepsTheFileWithItsBinder() throws {
        let path = "/tmp/evs-nohandover-\(getpid()).sock"
        let address = try SocketAddress(unixPath: path)
        let binder = try makeServer(address, handler: lineEchoHandler(for: .event))
        var configuration = ServerConfiguration(address: address, mode: .event)
        configuration.boundSocket = fcntl(binder.descriptor, F_DUPFD_CLOEXEC, 0)
        let adopter = try StreamServer(configuration: configuration, handler: lineEchoHandler(for: .event))
        adopter.close()
        #expect(access(path, F_OK) == 0, "an adopter that does not own the file leaves it")
        binder.close()
        #expect(access(path, F_OK) != 0)
    }
}
