import EvServer
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("server groups")
struct ServerGroupTests {
    @Test("a group shares one port, spreads clients over its loops, and closes cleanly")
    func sharesAPort() throws {
        let servers = try ServerGroup.streamServers(
            loops: 3, configuration: ServerConfiguration(address: try SocketAddress(host: "127.0.0.1", port: 0), mode: .event),
            handler: .event { ByteEchoEventHandler() }
        )
        defer { for server in servers { server.close() } }
        #expect(servers.count == 3)
        #expect(Set(servers.map(\.localAddress)).count == 1)
        for server in servers { try server.start() }
        for index in 0..<90 {
            let client = try TestClient(servers[0].localAddress)
            try client.send("\(index)\n")
            #expect(try client.readLine() == "\(index)\n")
        }
        #expect(servers.map(\.connectionsAccepted).reduce(0, +) == 90)
        #expect(servers.allSatisfy { $0.connectionsAccepted > 0 })
    }

    @Test("a Unix path gets one member; zero loops is refused")
    func unixAndZero() throws {
        let path = "/tmp/evs-group-\(getpid()).sock"
        let servers = try ServerGroup.streamServers(
            loops: 4, configuration: ServerConfiguration(address: try SocketAddress(unixPath: path), mode: .event),
            handler: .event { ByteEchoEventHandler() }
        )
        #expect(servers.count == 1)
        for server in servers { server.close() }
        #expect(throws: ServerError.self) {
            try ServerGroup.streamServers(
                loops: 0, configuration: ServerConfiguration(address: try SocketAddress(host: "127.0.0.1", port: 0), mode: .event),
                handler: .event { ByteEchoEventHandler() }
            )
        }
    }
}
