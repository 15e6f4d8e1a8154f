import EvServer
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What socketserver users override or reach for, and its EvServer form: `fileno()`, `server_bind` and
/// `get_request` (socket options), `rfile.read()`, buffered `wfile` with `flush`, and the `with` block.
@Suite("the rest of socketserver's surface")
struct SocketserverSurfaceTests {
    private static func loopback() throws -> SocketAddress { try SocketAddress(host: "127.0.0.1", port: 0) }

    @Test("descriptor is the listening socket: readable for an outer poll while a client waits", .timeLimit(.minutes(1)))
    func descriptorForAnOuterPoll() throws {
        let server = try StreamServer(
            configuration: ServerConfiguration(address: try Self.loopback(), mode: .thread),
            handler: .blocking { ReadToEndHandler() }
        )
        defer { server.close() }
        var entry = pollfd(fd: server.descriptor, events: Int16(POLLIN), revents: 0)
        #expect(poll(&entry, 1, 0) == 0, "nobody waits yet")
        let client = try TestClient(server.localAddress)  // queued in the backlog: the server does not serve
        #expect(poll(&entry, 1, 10_000) == 1 && entry.revents & Int16(POLLIN) != 0)
        try server.start()
        try client.send("x")
        client.shutdownWrite()
        #expect(try client.readToEnd() == Array("1 bytes".utf8))
    }

    @Test("configureListeningSocket runs before bind; what it throws refuses the server", .timeLimit(.minutes(1)))
    func configureListeningSocket() throws {
        let boundWhenCalled = Lock<Bool?>(nil)
        let hooks = ServerHooks(configureListeningSocket: { descriptor in
            var address = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
            }
            boundWhenCalled.withLock { $0 = address.sin_port != 0 }
            var keepAlive: CInt = 1
            setsockopt(descriptor, SOL_SOCKET, SO_KEEPALIVE, &keepAlive, socklen_t(MemoryLayout<CInt>.size))
        })
        let server = try StreamServer(
            configuration: ServerConfiguration(address: try Self.loopback(), mode: .event),
            handler: .event { EchoHandler() }, hooks: hooks
        )
        defer { server.close() }
        #expect(boundWhenCalled.withLock { $0 } == false, "called once, before bind")
        #expect(socketOption(server.descriptor, SO_KEEPALIVE) == 1)

        struct Refused: Error {}
        let error = #expect(throws: ServerError.self) {
            try StreamServer(
                configuration: ServerConfiguration(address: try Self.loopback(), mode: .event),
                handler: .event { EchoHandler() }, hooks: ServerHooks(configureListeningSocket: { _ in throw Refused() })
            )
        }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("configureListeningSocket") == true)
    }

    @Test("configureConnection sets options on each accepted socket before its handler runs", .timeLimit(.minutes(1)),
          arguments: [ExecutionMode.event, .thread])
    func configureConnection(mode: ExecutionMode) throws {
        let hooks = ServerHooks(configureConnection: { descriptor, _ in
            var keepAlive: CInt = 1
            setsockopt(descriptor, SOL_SOCKET, SO_KEEPALIVE, &keepAlive, socklen_t(MemoryLayout<CInt>.size))
        })
        let server = try StreamServer(
            configuration: ServerConfiguration(address: try Self.loopback(), mode: mode),
            handler: mode == .event ? .event { KeepAliveReporter() } : .blocking { KeepAliveReporter() }, hooks: hooks
        )
        defer { server.close() }
        try server.start()
        let client = try TestClient(server.localAddress)
        #expect(try client.readLine() == "keepalive 1\n")
    }

    @Test("readToEnd reads until the client half-closes, and refuses more than its limit", .timeLimit(.minutes(1)),
          arguments: [ExecutionMode.thread, .async])
    func readToEnd(mode: ExecutionMode) throws {
        var configuration = ServerConfiguration(address: try Self.loopback(), mode: mode)
        configuration.maximumLineLength = 1024
        configuration.maximumInputBuffer = 4096
        let server = try StreamServer(
            configuration: configuration,
            handler: mode == .async ? .async { ReadToEndHandler() } : .blocking { ReadToEndHandler() }
        )
        defer { server.close() }
        try server.start()
        let fits = try TestClient(server.localAddress)
        try fits.send([UInt8](repeating: 65, count: 3000))
        fits.shutdownWrite()
        #expect(try fits.readToEnd() == Array("3000 bytes".utf8))
        let tooMuch = try TestClient(server.localAddress)
        try tooMuch.send([UInt8](repeating: 65, count: 5000))
        tooMuch.shutdownWrite()
        #expect(try tooMuch.readToEnd() == Array("inputTooLarge".utf8))
    }

    @Test("bufferedWrite holds bytes until flush; what is left is sent when the handler returns", .timeLimit(.minutes(1)))
    func bufferedWrites() throws {
        let server = try StreamServer(
            configuration: ServerConfiguration(address: try Self.loopback(), mode: .thread),
            handler: .blocking { BufferingHandler() }
        )
        defer { server.close() }
        try server.start()
        let client = try TestClient(server.localAddress)
        try client.send("hello\n")
        #expect(try client.readLine() == "ready\n", "an unbuffered write sends what was buffered before it")
        var entry = pollfd(fd: client.descriptor, events: Int16(POLLIN), revents: 0)
        #expect(poll(&entry, 1, 200) == 0, "buffered bytes wait for flush")
        try client.send("flush\n")
        #expect(try client.readLine() == "one\n")
        try client.send("bye\n")
        #expect(try client.readToEnd() == Array("two\n".utf8), "flushed when the handler returned")
    }

    @Test("serving closes the server when its block ends, however it ends", .timeLimit(.minutes(1)))
    func servingScope() throws {
        let server = try StreamServer(
            configuration: ServerConfiguration(address: try Self.loopback(), mode: .event),
            handler: .event { EchoHandler() }
        )
        let address = server.localAddress
        struct Stop: Error {}
        #expect(throws: Stop.self) {
            try server.serving { server in
                try server.start()
                _ = try TestClient(address)
                throw Stop()
            }
        }
        #expect(throws: (any Error).self, "the port is closed") { _ = try TestClient(address) }
        #expect(throws: ServerError.self) { try server.start() }
    }
}

private func socketOption(_ descriptor: CInt, _ name: CInt) -> CInt {
    var value: CInt = 0
    var length = socklen_t(MemoryLayout<CInt>.size)
    getsockopt(descriptor, SOL_SOCKET, name, &value, &length)
    return value
}

/// Reports the connection's SO_KEEPALIVE, in either style.
private final class KeepAliveReporter: StreamEventHandler, StreamRequestHandler {
    func connectionOpened(_ connection: StreamConnection) {
        connection.write("keepalive \(min(1, socketOption(connection.descriptor, SO_KEEPALIVE)))\n")
    }
    func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) {}
    func handle(_ request: StreamRequest) throws {
        try request.write("keepalive \(min(1, socketOption(request.descriptor, SO_KEEPALIVE)))\n")
    }
}

/// Reads the whole input and answers its size, or the error's code.
private final class ReadToEndHandler: StreamRequestHandler, StreamAsyncHandler {
    func handle(_ request: StreamRequest) throws {
        do {
            try request.write("\(try request.readToEnd().count) bytes")
        } catch let error as ConnectionError {
            try request.write("\(error.code)")
        }
    }
    func handle(_ connection: AsyncConnection) async throws {
        do {
            try await connection.write("\(try await connection.readToEnd().count) bytes")
        } catch let error as ConnectionError {
            try await connection.write("\(error.code)")
        }
    }
}

/// Buffers, flushes on request, and leaves a buffered tail for the server to flush.
private final class BufferingHandler: StreamRequestHandler {
    func handle(_ request: StreamRequest) throws {
        _ = try request.readLine()
        try request.write("ready\n")
        try request.bufferedWrite("one\n")
        _ = try request.readLine()
        try request.flush()
        try request.bufferedWrite("two\n")
        _ = try request.readLine()
    }
}

@Suite("host names")
struct HostNameTests {
    @Test("a host name is resolved when the server is made (localhost through the system's resolver)")
    func resolvesNames() throws {
        let address = try SocketAddress(resolving: "localhost", port: 0)
        #expect(address.host == "127.0.0.1" || address.host == "::1")
        let server = try TCPServer(host: "localhost", port: 0) { EchoHandler() }
        defer { server.close() }
        #expect(server.localAddress.port != 0)
    }

    @Test("a name that does not resolve is a clear error naming it")
    func unresolvable() {
        let error = #expect(throws: ServerError.self) { try SocketAddress(resolving: "", port: 7) }
        #expect(error?.code == .invalidAddress)
        #expect(error?.message.contains("cannot resolve host ''") == true)
    }
}

@Suite("keeping a connection after handle returns")
struct HandOffTests {
    /// Reads the client's name the blocking way, then hands the connection to an event handler in a room.
    private final class Login: StreamRequestHandler {
        func handle(_ request: StreamRequest) throws {
            guard let name = try request.readLine() else { return }
            try request.write("welcome \(String(decoding: name.dropLast(), as: UTF8.self))\n")
            request.handOff(to: Room())
        }
    }

    private final class Room: StreamEventHandler {
        func connectionOpened(_ connection: StreamConnection) { connection.join(topic: "room") }
        func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) {
            connection.write("room heard: ")
            connection.write(bytes)
        }
    }

    @Test("a blocking handler hands its connection to the loop: unread input first, then broadcasts reach it",
          .timeLimit(.minutes(1)), arguments: [ExecutionMode.sync, .thread, .pool(threads: 2, queueLimit: 4)])
    func handOff(mode: ExecutionMode) throws {
        let server = try makeServer(mode: mode, handler: .blocking { Login() }, start: true)
        defer { server.close() }
        let client = try TestClient(server.localAddress)
        try client.send("alice\nfirst words\n")  // one segment: the login reads only the first line
        #expect(try client.readLine() == "welcome alice\n")
        #expect(try client.readLine() == "room heard: first words\n")
        server.broadcast(Array("news\n".utf8), topic: "room")
        #expect(try client.readLine() == "news\n")
        try client.send("more\n")
        #expect(try client.readLine() == "room heard: more\n")
        client.shutdownWrite()
        #expect(try client.readToEnd() == [], "the event handler's default closes at end of input")
        #expect(waitUntil { server.connectionsAccepted == 1 })
    }
}

@Suite("the registry from blocking handlers")
struct BlockingRegistryTests {
    /// The tutorials' chat with blocking handlers: join the room, then each line goes to the others.
    private final class ChatMember: StreamRequestHandler {
        func handle(_ request: StreamRequest) throws {
            request.join(topic: "room")
            try request.write("id \(request.id)\n")
            while let line = try request.readLine() {
                if line.starts(with: Array("leave".utf8)) {
                    request.leave(topic: "room")
                    try request.write("left\n")
                    continue
                }
                request.server.broadcast(line, topic: "room", except: request.id)
            }
        }
    }

    @Test("send(to:) and broadcast reach blocking connections in thread and pool mode", .timeLimit(.minutes(1)),
          arguments: [ExecutionMode.thread, .pool(threads: 4, queueLimit: 4)])
    func chat(mode: ExecutionMode) throws {
        let server = try makeServer(mode: mode, handler: .blocking { ChatMember() }, start: true)
        defer { server.close() }
        let alice = try TestClient(server.localAddress)
        let bob = try TestClient(server.localAddress)
        let carol = try TestClient(server.localAddress)
        var ids: [UInt64] = []
        for client in [alice, bob, carol] {
            let line = try client.readLine()
            ids.append(UInt64(line.dropFirst(3).dropLast()) ?? 0)
        }
        try alice.send("hello from alice\n")
        #expect(try bob.readLine() == "hello from alice\n")
        #expect(try carol.readLine() == "hello from alice\n")
        server.send(Array("just for bob\n".utf8), to: ids[1])
        #expect(try bob.readLine() == "just for bob\n")
        try carol.send("leave\n")
        #expect(try carol.readLine() == "left\n")
        try bob.send("bob again\n")
        #expect(try alice.readLine() == "bob again\n", "the sender is left out, the others hear it")
        var entry = pollfd(fd: carol.descriptor, events: Int16(POLLIN), revents: 0)
        #expect(poll(&entry, 1, 200) == 0, "carol left the room")
        server.send(Array("nobody\n".utf8), to: ids[0] + 1_000)  // an id no connection has: ignored
        try alice.send("still fine\n")
        #expect(try bob.readLine() == "still fine\n")
    }
}
