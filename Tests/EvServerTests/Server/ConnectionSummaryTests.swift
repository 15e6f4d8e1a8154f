import EvServer
import Synchronization
import Testing

/// `ServerHooks.connectionClosed`: one summary per connection, in every mode, with its bytes and reason.
@Suite("connection summaries")
struct ConnectionSummaryTests {
    @Test("the client ends: its bytes each way, closed-by-peer", arguments: allModes)
    func closedByPeer(mode: ExecutionMode) throws {
        let summaries = Summaries()
        let server = try makeServer(mode: mode, hooks: summaries.hooks, start: true)
        defer { server.close() }
        let client = try TestClient(server.localAddress)
        try client.send("hello\nworld, a longer line\n")
        #expect(try client.readLine() == "hello\n")
        #expect(try client.readLine() == "world, a longer line\n")
        client.shutdownWrite()
        #expect(client.ending().ending == .endOfStream)
        let list = summaries.wait(for: 1)
        try #require(list.count == 1)
        let summary = list[0]
        #expect(summary.bytesReceived == 27)
        #expect(summary.bytesSent == 27)
        #expect(summary.reason == .closedByPeer)
        #expect(summary.local == server.localAddress)
        #expect(summary.peer.host == "127.0.0.1")
        #expect(summary.duration >= 0 && summary.duration < 10)
        #expect(summary.id != 0)
    }

    @Test("the handler closes first: closed-by-handler", arguments: allModes)
    func closedByHandler(mode: ExecutionMode) throws {
        let summaries = Summaries()
        let server = try makeServer(
            mode: mode, handler: lineEchoHandler(for: mode), hooks: summaries.hooks, start: true
        )
        defer { server.close() }
        let client = try TestClient(server.localAddress)
        try client.send("one\n")
        #expect(try client.readLine() == "one\n")
        #expect(client.ending().ending == .endOfStream)
        let list = summaries.wait(for: 1)
        #expect(list.map(\.reason) == [.closedByHandler])
        #expect(list.map(\.bytesReceived) == [4])
        #expect(list.map(\.bytesSent) == [4])
    }

    @Test("closing the server: server-closed", arguments: [ExecutionMode.event, .async])
    func serverClosed(mode: ExecutionMode) throws {
        let summaries = Summaries()
        let server = try makeServer(mode: mode, hooks: summaries.hooks, start: true)
        let client = try TestClient(server.localAddress)
        try client.send("x\n")
        #expect(try client.readLine() == "x\n")
        server.close()
        #expect(summaries.wait(for: 1).map(\.reason) == [.serverClosed])
    }

    @Test("a refused client: denied, no bytes", arguments: allModes)
    func refused(mode: ExecutionMode) throws {
        let summaries = Summaries()
        var hooks = summaries.hooks
        hooks.verifyRequest = { _ in false }
        let server = try makeServer(mode: mode, hooks: hooks, start: true)
        defer { server.close() }
        let client = try TestClient(server.localAddress)
        #expect(client.ending().ending == .endOfStream)
        let list = summaries.wait(for: 1)
        #expect(list.map(\.reason) == [.denied])
        #expect(list.map(\.id) == [0])
        #expect(list.map(\.bytesReceived) == [0])
    }

    @Test("a handler that throws: handler-error", arguments: allModes)
    func handlerError(mode: ExecutionMode) throws {
        struct Boom: Error {}
        final class Failing: StreamEventHandler, StreamRequestHandler, StreamAsyncHandler {
            func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) throws {
                throw Boom()
            }
            func handle(_ request: StreamRequest) throws {
                _ = try request.readLine()
                throw Boom()
            }
            func handle(_ connection: AsyncConnection) async throws {
                _ = try await connection.readLine()
                throw Boom()
            }
        }
        let summaries = Summaries()
        var hooks = summaries.hooks
        hooks.handleError = { _, _ in }
        let handler = handler(for: mode, event: { Failing() }, blocking: { Failing() }, async: { Failing() })
        let server = try makeServer(mode: mode, handler: handler, hooks: hooks, start: true)
        defer { server.close() }
        let client = try TestClient(server.localAddress)
        try client.send("boom\n")
        _ = client.ending()
        let list = summaries.wait(for: 1)
        #expect(list.map(\.reason) == [.handlerError])
        #expect(list.map(\.bytesReceived) == [5])
    }
}
