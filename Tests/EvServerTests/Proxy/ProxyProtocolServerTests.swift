import EvServer
import Synchronization
import Testing

@Suite("PROXY protocol on a stream server")
struct ProxyProtocolServerTests {
    private static let source = try! SocketAddress(parsing: "203.0.113.7:51234")
    private static let destination = try! SocketAddress(parsing: "192.0.2.1:443")

    private func proxyServer(mode: ExecutionMode, hooks: ServerHooks = ServerHooks()) throws -> StreamServer {
        try makeServer(mode: mode, hooks: hooks, start: true) {
            $0.proxyProtocol = ProxyProtocolPolicy(headerTimeout: 1)
        }
    }

    @Test("every mode sees the header's client, and the bytes after the header reach the handler", arguments: allModes)
    func realClient(mode: ExecutionMode) throws {
        let seen = Lock<[SocketAddress]>([])
        let server = try proxyServer(mode: mode, hooks: ServerHooks(verifyRequest: { client in
            seen.withLock { $0.append(client) }
            return true
        }))
        defer { server.close() }
        for version in [ProxyHeader.Version.v1, .v2] {
            let client = try TestClient(server.localAddress)
            let header = ProxyHeader(version: version, source: Self.source, destination: Self.destination)
            try client.send(header.encoded() + Array("hello\n".utf8))
            #expect(try client.readLine() == "hello\n")
        }
        #expect(seen.withLock { $0 } == [Self.source, Self.source])
        #expect(server.proxyProtocolStatistics[.proxied] == 2)
    }

    @Test("a malformed header closes the connection, is counted, and frees its slot")
    func malformed() throws {
        let server = try makeServer(start: true) {
            $0.proxyProtocol = ProxyProtocolPolicy()
            $0.maximumConnections = 1
        }
        defer { server.close() }
        let client = try TestClient(server.localAddress)
        try client.send("GET / HTTP/1.0\r\n\r\n")
        #expect(client.ending().received.isEmpty)
        #expect(waitUntil(timeout: 5) { server.proxyProtocolStatistics[.invalid] == 1 && server.connectionsOpen == 0 })
        let next = try TestClient(server.localAddress)
        try next.send(ProxyHeader(version: .v1, source: nil, destination: nil).encoded() + Array("ok\n".utf8))
        #expect(try next.readLine() == "ok\n", "the slot held while the header was awaited is free again")
    }

    @Test("only stream servers take it, with a positive header timeout")
    func validation() throws {
        var datagram = ServerConfiguration(address: try loopback())
        datagram.proxyProtocol = ProxyProtocolPolicy()
        #expect(throws: ServerError.self) {
            _ = try DatagramServer(configuration: datagram, handler: datagramEchoHandler(for: .event))
        }
        #expect(throws: ServerError.self) {
            _ = try makeServer { $0.proxyProtocol = ProxyProtocolPolicy(headerTimeout: 0) }
        }
    }
}
