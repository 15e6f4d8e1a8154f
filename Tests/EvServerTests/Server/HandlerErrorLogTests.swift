import EvServer
import Logging
import Synchronization
import Testing

private struct Failure: Error, CustomStringConvertible { var description: String { "the handler gave up" } }

private final class ThrowingHandler: StreamRequestHandler {
    func handle(_ request: StreamRequest) throws {
        _ = try request.readLine()
        throw Failure()
    }
}

/// socketserver prints a handler's traceback; a handler's error here is logged at error level by default.
@Suite("handler errors are never silent")
struct HandlerErrorLogTests {
    @Test("without a handleError hook, a handler's error is logged at error level with the client's address",
          .timeLimit(.minutes(1)))
    func loggedAtErrorLevel() throws {
        let recorder = CapturingLogHandler()
        let logger = Logger(label: "test", factory: { _ in recorder })
        let address = try SocketAddress(host: "127.0.0.1", port: 0)
        let server = try StreamServer(
            configuration: ServerConfiguration(address: address, mode: .thread), handler: .blocking { ThrowingHandler() },
            logger: logger
        )
        defer { server.close() }
        try server.start()
        let client = try TestClient(server.localAddress)
        try client.send("hello\n")
        let logged = waitUntil {
            recorder.entries.withLock { entries in
                entries.contains { $0.level == .error && $0.metadata["error"] == "the handler gave up" }
            }
        }
        #expect(logged)
        let entry = recorder.entries.withLock { $0.first { $0.level == .error } }
        #expect(entry?.metadata["connection.peer"].map { "\($0)".hasPrefix("127.0.0.1:") } == true)
    }
}
