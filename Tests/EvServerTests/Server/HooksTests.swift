import EvServer
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("hooks")
struct HooksTests {
    @Test("a rejected client is closed once and no handler runs", arguments: allModes)
    func verifyRequestRejects(mode: ExecutionMode) throws {
        let verified = Counter()
        let handled = Counter()
        let hooks = ServerHooks(verifyRequest: { _ in verified.increment(); return false })
        final class Recording: StreamRequestHandler {
            let handled: Counter
            init(_ handled: Counter) { self.handled = handled }
            func handle(_ request: StreamRequest) throws { handled.increment() }
        }
        final class RecordingEvent: StreamEventHandler {
            let handled: Counter
            init(_ handled: Counter) { self.handled = handled }
            func connectionOpened(_ connection: StreamConnection) { handled.increment() }
            func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) {}
        }
        final class RecordingAsync: StreamAsyncHandler {
            let handled: Counter
            init(_ handled: Counter) { self.handled = handled }
            func handle(_ connection: AsyncConnection) async throws { handled.increment() }
        }
        let handler = handler(
            for: mode, event: { RecordingEvent(handled) }, blocking: { Recording(handled) }, async: { RecordingAsync(handled) }
        )
        let server = try makeServer(mode: mode, handler: handler, hooks: hooks)
        defer { server.close() }
        let client = try TestClient(server.localAddress)
        #expect(try server.handleRequest())
        #expect(client.ending().ending == .endOfStream, "the rejected client sees the connection closed")
        #expect(verified.count == 1)
        #expect(handled.count == 0)
    }

    @Test("a throwing handler is reported once and the server keeps serving", arguments: allModes)
    func handleErrorOnce(mode: ExecutionMode) throws {
        struct Boom: Error {}
        let reported = Lock<[String]>([])
        let hooks = ServerHooks(handleError: { error, _ in reported.withLock { $0.append("\(error)") } })
        final class Failing: StreamRequestHandler {
            func handle(_ request: StreamRequest) throws {
                let line = try request.readLine() ?? []
                if line == Array("fail\n".utf8) { throw Boom() }
                try request.write(line)
            }
        }
        final class FailingEvent: StreamEventHandler {
            func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) throws {
                if Array(bytes) == Array("fail\n".utf8) { throw Boom() }
                connection.write(bytes)
                connection.close()
            }
        }
        final class FailingAsync: StreamAsyncHandler {
            func handle(_ connection: AsyncConnection) async throws {
                let line = try await connection.readLine() ?? []
                if line == Array("fail\n".utf8) { throw Boom() }
                try await connection.write(line)
            }
        }
        let handler = handler(for: mode, event: { FailingEvent() }, blocking: { Failing() }, async: { FailingAsync() })
        let server = try makeServer(mode: mode, handler: handler, hooks: hooks)
        let serving = ServingThread(server)
        let failing = try TestClient(server.localAddress)
        try failing.send("fail\n")
        #expect(failing.ending().ending == .endOfStream, "the failing connection is closed")
        let next = try TestClient(server.localAddress)
        try next.send("ok\n")
        #expect(try next.readLine() == "ok\n")
        server.shutdown()
        #expect(serving.join(), "serveForever returned")
        server.close()
        #expect(reported.withLock { $0 } == ["Boom()"])
    }

    @Test("handleRequest calls handleTimeout when no client comes")
    func handleTimeout() throws {
        let timeouts = Counter()
        let server = try makeServer(
            mode: .sync, handler: lineEchoHandler(for: .sync), hooks: ServerHooks(handleTimeout: { timeouts.increment() })
        ) { $0.timeout = 0.05 }
        defer { server.close() }
        #expect(try server.handleRequest() == false)
        #expect(timeouts.count == 1)
        // and a client that does come is handled
        let client = try TestClient(server.localAddress)
        try client.send("hi\n")
        #expect(try server.handleRequest())
        #expect(try client.readLine() == "hi\n")
        #expect(timeouts.count == 1)
    }

    @Test("serviceActions runs while serving")
    func serviceActions() throws {
        let calls = Counter()
        let server = try makeServer(hooks: ServerHooks(serviceActions: { calls.increment() })) { $0.serviceActionsInterval = 0.01 }
        let serving = ServingThread(server)
        #expect(waitUntil(timeout: 5) { calls.count >= 3 })
        server.shutdown()
        #expect(serving.join(), "serveForever returned")
        server.close()
    }
}
