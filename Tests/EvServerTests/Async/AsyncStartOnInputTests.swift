import EvServer
import Testing

/// An echo handler that records when its task starts and what its reads return, and starts on input.
private final class LazyEcho: StreamAsyncHandler {
    let record: Record
    init(_ record: Record) { self.record = record }

    var startsOnInput: Bool { true }

    func handle(_ connection: AsyncConnection) async throws {
        record.add("started")
        while let line = try await connection.readLine() {
            try await connection.write(line)
        }
        record.add("end of input")
    }
}

@Suite("async handlers that start on input")
struct AsyncStartOnInputTests {
    private func lazyServer(
        _ record: Record, hooks: ServerHooks = ServerHooks(), configure: (inout ServerConfiguration) -> Void = { _ in }
    ) throws -> StreamServer {
        try makeServer(mode: .async, handler: .async { LazyEcho(record) }, hooks: hooks, start: true, configure: configure)
    }

    @Test("the task starts with the first input, which its first read gets; an open silent client runs nothing")
    func startsOnFirstInput() throws {
        let record = Record()
        let server = try lazyServer(record)
        defer { server.close() }
        let silent = try TestClient(server.localAddress)
        let speaking = try TestClient(server.localAddress)
        #expect(waitUntil { server.connectionsOpen == 2 })
        try speaking.send("first\n")
        #expect(try speaking.readLine() == "first\n")
        try speaking.send("second\n")
        #expect(try speaking.readLine() == "second\n")
        #expect(record.all == ["started"], "the silent client's handler has not run")
        _ = silent
    }

    @Test("end of input before any byte starts the handler, whose read returns nothing")
    func endOfInputFirst() throws {
        let record = Record()
        let server = try lazyServer(record)
        defer { server.close() }
        let client = try TestClient(server.localAddress)
        client.shutdownWrite()
        #expect(client.ending().ending == .endOfStream)
        #expect(waitUntil { record.all == ["started", "end of input"] })
    }

    @Test("a connection closed before its first input never runs the handler, and its summary says why")
    func closedBeforeInput() throws {
        let record = Record()
        let summaries = Summaries()
        let server = try lazyServer(record, hooks: summaries.hooks) { $0.idleTimeout = 0.3 }
        defer { server.close() }
        let client = try TestClient(server.localAddress)
        #expect(client.ending().ending == .endOfStream)
        #expect(summaries.wait(for: 1).map(\.reason) == [.idleTimeout])
        #expect(record.all.isEmpty)
    }

    @Test("a drain's deadline ends a silent connection's input: its handler runs and reads nothing")
    func drain() throws {
        let record = Record()
        let server = try lazyServer(record)
        defer { server.close() }
        let silent = try TestClient(server.localAddress)
        #expect(waitUntil { server.connectionsOpen == 1 })
        let drained = Lock<Bool?>(nil)
        _ = PThread { drained.withLock { $0 = server.shutdownGracefully(timeout: 0.3) } }
        #expect(silent.ending().ending == .endOfStream)
        #expect(waitUntil { drained.withLock { $0 } != nil })
        #expect(record.all == ["started", "end of input"])
    }
}
