import EvServer
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// CPython's test_socketserver stream scenarios, ported: every stream transport in every mode.
@Suite("socketserver scenarios")
struct SocketServerScenarioTests {
    @Test("three sequential clients each get their line back", arguments: Transport.allCases, allModes)
    func threeSequentialClients(transport: Transport, mode: ExecutionMode) throws {
        let server = try StreamServer(
            configuration: ServerConfiguration(address: try transport.address(), mode: mode),
            handler: lineEchoHandler(for: mode)
        )
        if transport != .unix { #expect(server.localAddress.port != 0) }
        let serving = ServingThread(server)
        for _ in 0..<3 {
            let client = try TestClient(server.localAddress)
            try client.send("hello world\n")
            #expect(try client.readLine() == "hello world\n")
            #expect(try client.readToEnd().isEmpty, "the connection closes after the handler")
        }
        server.shutdown()
        #expect(serving.join(), "serveForever returns after shutdown")
        server.close()
        if let path = server.localAddress.unixPath {
            #expect(access(path, F_OK) != 0, "close removes the Unix socket file")
        }
    }

    @Test("20 servers started and shut down at once never hang")
    func rapidStartShutdown() throws {
        for index in 0..<20 {
            let mode = allModes[index % allModes.count]
            let server = try StreamServer(
                configuration: ServerConfiguration(address: try SocketAddress(host: "127.0.0.1", port: 0), mode: mode),
                handler: lineEchoHandler(for: mode)
            )
            let serving = ServingThread(server)
            server.shutdown()
            #expect(serving.join(timeout: 5), "cycle \(index) hung")
            server.close()
        }
    }

    @Test("close without ever serving", arguments: allModes)
    func closeWithoutServing(mode: ExecutionMode) throws {
        let server = try StreamServer(
            configuration: ServerConfiguration(address: try SocketAddress(host: "127.0.0.1", port: 0), mode: mode),
            handler: lineEchoHandler(for: mode)
        )
        server.close()
        server.close()  // idempotent
        #expect(throws: ServerError.self) { try server.serveForever() }
    }

    @Test("1024 failed binds leak no descriptor")
    func failedBindsLeakNothing() throws {
        let holder = try StreamServer(
            configuration: ServerConfiguration(address: try SocketAddress(host: "127.0.0.1", port: 0)),
            handler: .event { LineEchoEventHandler() }
        )
        defer { holder.close() }
        var taken = ServerConfiguration(address: holder.localAddress)
        taken.reuseAddress = false
        let before = openDescriptorCount()
        for _ in 0..<1024 {
            do {
                _ = try StreamServer(configuration: taken, handler: .event { LineEchoEventHandler() })
                Issue.record("binding a port in use succeeded")
            } catch {
                #expect(error.code == .addressInUse)
            }
        }
        // Other tests run in parallel and open descriptors too; a leak would add 1024.
        #expect(openDescriptorCount() - before < 200)
    }

    @Test("a server can be replaced at once on the same port (SO_REUSEADDR)")
    func rebindRightAfterClose() throws {
        let first = try StreamServer(
            configuration: ServerConfiguration(address: try SocketAddress(host: "127.0.0.1", port: 0), mode: .sync),
            handler: lineEchoHandler(for: .sync)
        )
        let address = first.localAddress
        let serving = ServingThread(first)
        let client = try TestClient(address)
        try client.send("x\n")
        _ = try client.readToEnd()  // the server closed first: its side is in TIME_WAIT
        first.shutdown()
        _ = serving.join()
        first.close()
        let second = try StreamServer(
            configuration: ServerConfiguration(address: address, mode: .sync),
            handler: lineEchoHandler(for: .sync)
        )
        second.close()
    }

    @Test("two servers share a port only with reusePort")
    func reusePort() throws {
        var configuration = ServerConfiguration(address: try SocketAddress(host: "127.0.0.1", port: 0))
        configuration.reusePort = true
        let first = try StreamServer(configuration: configuration, handler: .event { LineEchoEventHandler() })
        defer { first.close() }
        configuration.address = first.localAddress
        let second = try StreamServer(configuration: configuration, handler: .event { LineEchoEventHandler() })
        second.close()
        configuration.reusePort = false
        #expect(throws: ServerError.self) {
            try StreamServer(configuration: configuration, handler: .event { LineEchoEventHandler() })
        }
    }

    @Test("an out-of-range configuration is refused before binding")
    func invalidConfiguration() throws {
        let address = try SocketAddress(host: "127.0.0.1", port: 0)
        var configurations: [ServerConfiguration] = []
        for mode in [ExecutionMode.pool(threads: 0, queueLimit: 1), .pool(threads: 1, queueLimit: -1)] {
            configurations.append(ServerConfiguration(address: address, mode: mode))
        }
        var configuration = ServerConfiguration(address: address, mode: .thread)
        configuration.backlog = -1
        configurations.append(configuration)
        configuration = ServerConfiguration(address: address, mode: .thread)
        configuration.idleTimeout = 0
        configurations.append(configuration)
        configuration = ServerConfiguration(address: address, mode: .thread)
        configuration.writeBufferLowWaterMark = configuration.writeBufferHighWaterMark + 1
        configurations.append(configuration)
        for configuration in configurations {
            let error = #expect(throws: ServerError.self) {
                try StreamServer(configuration: configuration, handler: .blocking { LineEchoRequestHandler() })
            }
            #expect(error?.code == .invalidConfiguration)
        }
    }

    @Test("a handler of the wrong style for the mode is refused")
    func styleMismatch() throws {
        let address = try SocketAddress(host: "127.0.0.1", port: 0)
        let error = #expect(throws: ServerError.self) {
            try StreamServer(configuration: ServerConfiguration(address: address, mode: .thread), handler: .event { LineEchoEventHandler() })
        }
        #expect(error?.code == .invalidConfiguration)
        #expect(throws: ServerError.self) {
            try StreamServer(configuration: ServerConfiguration(address: address, mode: .event), handler: .blocking { LineEchoRequestHandler() })
        }
    }
}
