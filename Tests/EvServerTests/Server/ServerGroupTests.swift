import EvServer
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("server groups")
struct ServerGroupTests {
    @Test("a group shares one port, serves from every loop, and closes cleanly")
    func sharesAPort() throws {
        /// Echoes, but holds its loop at the gate first: a loop in a handler takes no connection.
        final class HoldingEcho: StreamEventHandler {
            let arrived: Counter, gate: Gate
            init(_ arrived: Counter, _ gate: Gate) { (self.arrived, self.gate) = (arrived, gate) }
            func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) {
                arrived.increment()
                try? gate.wait()
                connection.write(bytes)
            }
        }
        let arrived = Counter(), gate = Gate()
        let servers = try ServerGroup.streamServers(
            loops: 3, configuration: ServerConfiguration(address: try loopback(), mode: .event),
            handler: .event { HoldingEcho(arrived, gate) }
        )
        defer { for server in servers { server.close() } }
        #expect(servers.count == 3)
        #expect(Set(servers.map(\.localAddress)).count == 1)
        for server in servers { try server.start() }
        // The loops take turns at one queue, and which loop wakes first is the scheduler's business; but a
        // loop held in a handler accepts nothing, so each next client must be taken by another loop.
        var held: [TestClient] = []
        for index in 1...3 {
            let client = try TestClient(servers[0].localAddress)
            try client.send("\(index)\n")
            held.append(client)
            #expect(waitUntil { arrived.count == index }, "client \(index) reached a free loop")
        }
        #expect(servers.map(\.connectionsAccepted) == [1, 1, 1], "each loop took one")
        gate.open()
        for (index, client) in held.enumerated() { #expect(try client.readLine() == "\(index + 1)\n") }
        for index in 0..<30 {
            let client = try TestClient(servers[0].localAddress)
            try client.send("\(index)\n")
            #expect(try client.readLine() == "\(index)\n")
        }
        #expect(servers.map(\.connectionsAccepted).reduce(0, +) == 33)
        #expect(!gate.expired)
    }

    @Test("send and broadcast on any member reach the connections of every loop")
    func talkAcrossLoops() throws {
        // reusePort: a socket per loop, so the kernel spreads connections by hash (with one shared socket,
        // which loop accepts is up to the scheduler, and one loop may take every client of a slow test).
        var configuration = ServerConfiguration(address: try loopback(), mode: .async)
        configuration.reusePort = true
        let servers = try ServerGroup.streamServers(
            loops: 2, configuration: configuration, handler: .async { TopicMember(topic: "all") }
        )
        defer { for server in servers { server.close() } }
        for server in servers { try server.start() }
        // Connect until both loops hold a client.
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
