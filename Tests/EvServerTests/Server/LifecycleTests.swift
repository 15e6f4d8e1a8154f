import EvServer
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("lifecycle")
struct LifecycleTests {
    @Test("shutdown from inside a handler does not deadlock", arguments: allModes)
    func shutdownFromHandler(mode: ExecutionMode) throws {
        final class Stopping: StreamRequestHandler {
            func handle(_ request: StreamRequest) throws {
                request.server.shutdown()
                try request.write("bye\n")
            }
        }
        final class StoppingEvent: StreamEventHandler {
            func connectionOpened(_ connection: StreamConnection) {
                connection.server.shutdown()
                connection.write("bye\n")
                connection.close()
            }
            func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) {}
        }
        final class StoppingAsync: StreamAsyncHandler {
            func handle(_ connection: AsyncConnection) async throws {
                connection.server.shutdown()
                try await connection.write("bye\n")
            }
        }
        let handler = handler(for: mode, event: { StoppingEvent() }, blocking: { Stopping() }, async: { StoppingAsync() })
        let server = try StreamServer(
            configuration: ServerConfiguration(address: try SocketAddress(host: "127.0.0.1", port: 0), mode: mode),
            handler: handler
        )
        let serving = ServingThread(server)
        let client = try TestClient(server.localAddress)
        #expect(try client.readLine() == "bye\n")
        #expect(serving.join(timeout: 5), "serveForever returned")
        server.close()
    }

    @Test("close from inside a handler does not deadlock", arguments: allModes)
    func closeFromHandler(mode: ExecutionMode) throws {
        final class Closing: StreamRequestHandler {
            func handle(_ request: StreamRequest) throws {
                try request.write("bye\n")
                request.server.close()
            }
        }
        final class ClosingEvent: StreamEventHandler {
            func connectionOpened(_ connection: StreamConnection) {
                connection.write("bye\n")
                connection.server.close()
            }
            func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) {}
        }
        final class ClosingAsync: StreamAsyncHandler {
            func handle(_ connection: AsyncConnection) async throws {
                try await connection.write("bye\n")
                connection.server.close()
            }
        }
        let handler = handler(for: mode, event: { ClosingEvent() }, blocking: { Closing() }, async: { ClosingAsync() })
        let server = try StreamServer(
            configuration: ServerConfiguration(address: try SocketAddress(host: "127.0.0.1", port: 0), mode: mode),
            handler: handler
        )
        let address = server.localAddress
        let serving = ServingThread(server)
        let client = try TestClient(address)
        #expect(try client.readLine() == "bye\n")
        #expect(try client.readToEnd().isEmpty)
        #expect(serving.join(timeout: 5), "serveForever returned")
        // serveForever returns once the helper's shutdown is done; the listener closes right after.
        #expect(waitUntil(timeout: 5) { (try? TestClient(address)) == nil }, "the listener is closed")
    }

    @Test("shutdown before serveForever makes it return at once")
    func shutdownBeforeServing() throws {
        let server = try StreamServer(
            configuration: ServerConfiguration(address: try SocketAddress(host: "127.0.0.1", port: 0)),
            handler: lineEchoHandler(for: .event)
        )
        server.shutdown()
        try server.serveForever()
        server.close()
    }

    @Test("serving twice at once is refused")
    func alreadyServing() throws {
        let server = try StreamServer(
            configuration: ServerConfiguration(address: try SocketAddress(host: "127.0.0.1", port: 0)),
            handler: lineEchoHandler(for: .event)
        )
        try server.start()
        let error = #expect(throws: ServerError.self) { try server.serveForever() }
        #expect(error?.code == .alreadyServing)
        server.close()
    }

    @Test("thread mode reaps its worker threads")
    func threadsReaped() throws {
        let server = try StreamServer(
            configuration: ServerConfiguration(address: try SocketAddress(host: "127.0.0.1", port: 0), mode: .thread),
            handler: lineEchoHandler(for: .thread)
        )
        let serving = ServingThread(server)
        #expect(waitUntil { threadCount() > 0 })
        let before = threadCount()
        for _ in 0..<50 {
            let client = try TestClient(server.localAddress)
            try client.send("x\n")
            _ = try client.readToEnd()
        }
        // Other tests run in parallel; 50 unreaped threads would show.
        #expect(waitUntil(timeout: 5) { threadCount() - before < 25 })
        server.shutdown()
        _ = serving.join()
        server.close()
    }

    @Test("close wakes blocking handlers stuck in a read", arguments: [ExecutionMode.sync, .thread, .pool(threads: 1, queueLimit: 1)])
    func closeWakesBlockedHandlers(mode: ExecutionMode) throws {
        final class ReadsALine: StreamRequestHandler {
            let reading: Gate
            init(_ reading: Gate) { self.reading = reading }
            func handle(_ request: StreamRequest) throws {
                reading.open()
                _ = try request.readLine()
            }
        }
        let reading = Gate()
        let server = try StreamServer(
            configuration: ServerConfiguration(address: try SocketAddress(host: "127.0.0.1", port: 0), mode: mode),
            handler: .blocking { ReadsALine(reading) }
        )
        try server.start()
        let client = try TestClient(server.localAddress)  // never ends its line: the handler blocks in readLine
        try client.send("partial")
        reading.wait()
        server.close()
        #expect(try client.readToEnd().isEmpty)
    }

    @Test("a 16 MiB + 1 byte write from a blocking handler arrives whole, signals or not")
    func largeBlockingWrite() throws {
        let size = 16 * 1024 * 1024 + 1
        final class Big: StreamRequestHandler {
            let size: Int
            init(size: Int) { self.size = size }
            func handle(_ request: StreamRequest) throws {
                #expect(try request.write("write data\n") == 11)
                #expect(try request.readLine() == Array("client response\n".utf8))
                #expect(try request.write([UInt8](repeating: 0, count: size)) == size)
            }
        }
        // A handler without SA_RESTART makes blocking calls fail with EINTR: they must retry, not truncate.
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        sigaction(SIGUSR1, &action, nil)
        let server = try StreamServer(
            configuration: ServerConfiguration(address: try SocketAddress(host: "127.0.0.1", port: 0), mode: .thread),
            handler: .blocking { Big(size: size) }
        )
        let serving = ServingThread(server)
        let client = try TestClient(server.localAddress)
        #expect(try client.readLine() == "write data\n")
        try client.send("client response\n")
        var received = 0
        var signals = 0
        while true {
            let chunk = try client.receive()
            if chunk.isEmpty { break }
            #expect(chunk.allSatisfy { $0 == 0 })
            received += chunk.count
            if signals < 200 { kill(getpid(), SIGUSR1); signals += 1 }
        }
        #expect(received == size)
        server.shutdown()
        _ = serving.join()
        server.close()
    }

    @Test("a timeout set by the handler mid-connection applies to its next read (the socket stops waiting in the kernel)")
    func timeoutSetLater() throws {
        let outcome = Record()
        final class Reader: StreamRequestHandler {
            let outcome: Record
            init(_ outcome: Record) { self.outcome = outcome }
            func handle(_ request: StreamRequest) throws {
                _ = try request.readLine()  // no timeout yet: waits in the kernel
                try request.write("first\n")
                request.idleTimeout = 0.3
                do { _ = try request.readLine() } catch let error as ConnectionError { outcome.add("\(error.code)") }
            }
        }
        let server = try StreamServer(
            configuration: ServerConfiguration(address: try SocketAddress(host: "127.0.0.1", port: 0), mode: .thread),
            handler: .blocking { Reader(outcome) }
        )
        defer { server.close() }
        try server.start()
        let client = try TestClient(server.localAddress)
        try client.send("one\n")
        #expect(try client.readLine() == "first\n")
        #expect(waitUntil(timeout: 5) { outcome.all == ["timedOut"] })
    }

    @Test("a blocking read times out with an error the handler can catch", arguments: [ExecutionMode.sync, .thread, .pool(threads: 1, queueLimit: 0)])
    func blockingIdleTimeout(mode: ExecutionMode) throws {
        final class Patient: StreamRequestHandler {
            func handle(_ request: StreamRequest) throws {
                do {
                    _ = try request.readLine()
                } catch let error as ConnectionError where error.code == .timedOut {
                    try request.write("timeout\n")
                }
            }
        }
        var configuration = ServerConfiguration(address: try SocketAddress(host: "127.0.0.1", port: 0), mode: mode)
        configuration.idleTimeout = 0.1
        let server = try StreamServer(configuration: configuration, handler: .blocking { Patient() })
        try server.start()
        let client = try TestClient(server.localAddress)
        #expect(try client.readLine() == "timeout\n")
        server.close()
    }

    @Test("an idle event-mode client is closed")
    func eventIdleTimeout() throws {
        var configuration = ServerConfiguration(address: try SocketAddress(host: "127.0.0.1", port: 0))
        configuration.idleTimeout = 0.1
        let closedByTimeout = Counter()
        final class Recording: StreamEventHandler {
            let closedByTimeout: Counter
            init(_ counter: Counter) { closedByTimeout = counter }
            func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) {
                connection.write(bytes)
            }
            func connectionClosed(_ connection: StreamConnection, error: ConnectionError?) {
                if error?.code == .timedOut { closedByTimeout.increment() }
            }
        }
        let server = try StreamServer(configuration: configuration, handler: .event { Recording(closedByTimeout) })
        try server.start()
        let client = try TestClient(server.localAddress)
        try client.send("a\n")
        #expect(try client.readLine() == "a\n")
        #expect(try client.readToEnd().isEmpty)
        // The client may see the close before the loop thread has told the handler.
        #expect(waitUntil(timeout: 5) { closedByTimeout.count == 1 })
        server.close()
    }
}
