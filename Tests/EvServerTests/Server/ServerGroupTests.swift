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
            loops: 3, configuration: ServerConfiguration(address: try loopback(), mode: .event),
            handler: .event { EchoHandler() }
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

    @Test("send and broadcast on any member reach the connections of every loop")
    func talkAcrossLoops() throws {
        let servers = try ServerGroup.streamServers(
            loops: 2, configuration: ServerConfiguration(address: try loopback(), mode: .async),
            handler: .async { TopicMember(topic: "all") }
        )
        defer { for server in servers { server.close() } }
        for server in servers { try server.start() }
        // Connect until both loops hold a client (the kernel spreads them by hash).
        var clients: [(client: TestClient, id: ConnectionID)] = []
        while servers.contains(where: { $0.connectionsAccepted == 0 }) && clients.count < 200 {
            let client = try TestClient(servers[0].localAddress)
            clients.append((client, ConnectionID(try client.readLine().dropFirst(3).dropLast())!))
        }
        #expect(servers.allSatisfy { $0.connectionsAccepted > 0 })
        servers[0].broadcast(Array("to all\n".utf8), topic: "all")
        for (client, _) in clients { #expect(try client.readLine() == "to all\n") }
        for (client, id) in clients {  // each through the first member, wherever the connection lives
            servers[0].send(Array("to \(id)\n".utf8), to: id)
            #expect(try client.readLine() == "to \(id)\n")
        }
        #expect(Set(clients.map(\.id)).count == clients.count, "ids are unique across the group")
    }

    @Test("a Unix path gets one member; zero loops is refused")
    func unixAndZero() throws {
        let path = temporarySocketPath()
        let servers = try ServerGroup.streamServers(
            loops: 4, configuration: ServerConfiguration(address: try SocketAddress(unixPath: path), mode: .event),
            handler: .event { EchoHandler() }
        )
        #expect(servers.count == 1)
        for server in servers { server.close() }
        #expect(throws: ServerError.self) {
            try ServerGroup.streamServers(
                loops: 0, configuration: ServerConfiguration(address: try loopback(), mode: .event),
                handler: .event { EchoHandler() }
            )
        }
    }
}
