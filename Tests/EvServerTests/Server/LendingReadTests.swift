import EvServer
import Testing

/// `StreamRequest.read(upTo:lending:)`: `read(upTo:)` without an array per read, for blocking handlers.
@Suite("a blocking handler's lending read")
struct LendingReadTests {
    private static func serve(_ handler: @escaping @Sendable () -> any StreamRequestHandler) throws -> StreamServer {
        let server = try StreamServer(
            configuration: ServerConfiguration(address: try SocketAddress(host: "127.0.0.1", port: 0), mode: .thread),
            handler: .blocking(handler)
        )
        try server.start()
        return server
    }

    @Test("lends at most upTo bytes of what arrived, in order, then an empty buffer at end of input",
          .timeLimit(.minutes(1)))
    func chunksThenEnd() throws {
        let server = try Self.serve { ChunkHandler() }
        defer { server.close() }
        let client = try TestClient(server.localAddress)
        try client.send("abcdefghij")
        client.shutdownWrite()
        let reply = String(decoding: try client.readToEnd(), as: UTF8.self)
        #expect(reply.hasSuffix("end"), "the handler saw the end of input: \(reply)")
        let chunks = reply.dropLast(3).split(separator: "|").map(String.init)
        #expect(chunks.joined() == "abcdefghij")
        #expect(chunks.allSatisfy { (1...4).contains($0.count) }, "each lent chunk is 1 to 4 bytes: \(chunks)")
    }

    @Test("the handler may read again inside the call; the lent bytes stay as they were", .timeLimit(.minutes(1)))
    func nestedRead() throws {
        let server = try Self.serve { NestedReadHandler() }
        defer { server.close() }
        let client = try TestClient(server.localAddress)
        try client.send("xyz")
        client.shutdownWrite()
        #expect(String(decoding: try client.readToEnd(), as: UTF8.self) == "x|yz")
    }
}

/// Writes each lent chunk followed by `|`, then `end` when the input ends.
private final class ChunkHandler: StreamRequestHandler {
    func handle(_ request: StreamRequest) throws {
        while try request.read(upTo: 4, lending: { bytes in
            if bytes.isEmpty { return false }
            _ = try request.write(bytes: bytes)
            _ = try request.write("|")
            return true
        }) {}
        _ = try request.write("end")
    }
}

/// Lends one byte, and inside that call lends the rest: writes `first|rest`.
private final class NestedReadHandler: StreamRequestHandler {
    func handle(_ request: StreamRequest) throws {
        try request.read(upTo: 1) { first in
            try request.read(upTo: 100) { rest in
                _ = try request.write(Array(first) + Array("|".utf8) + Array(rest))
            }
        }
    }
}
