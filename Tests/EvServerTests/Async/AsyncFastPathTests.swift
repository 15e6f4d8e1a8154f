import EvServer
import Testing

/// The async mode's cheap paths (issue 16): lent reads, and tasks resumed on the loop's own thread.
@Suite("async fast paths")
struct AsyncFastPathTests {
    @Test("read(upTo:lending:) lends each piece of input once, then empty bytes at end of input")
    func lendingReads() throws {
        final class Upper: StreamAsyncHandler {
            func handle(_ connection: AsyncConnection) async throws {
                var reply: [UInt8] = []
                while try await connection.read(upTo: 3, lending: { bytes in
                    reply = bytes.map { $0 >= 97 && $0 <= 122 ? $0 - 32 : $0 }
                    return !bytes.isEmpty
                }) {
                    try await connection.write(reply)
                }
                try await connection.write("<end>")
            }
        }
        let server = try makeServer(mode: .async, handler: .async { Upper() }, start: true)
        defer { server.close() }
        let client = try TestClient(server.localAddress)
        try client.send("abcdefg")
        client.shutdownWrite()
        #expect(try String(decoding: client.readToEnd(limit: 64), as: UTF8.self) == "ABCDEFG<end>")
    }

    @Test("a task that keeps yielding on the loop does not starve the loop's other connections")
    func yieldingTaskDoesNotStarve() throws {
        let record = Record()
        final class Spinner: StreamAsyncHandler {
            let record: Record
            init(_ record: Record) { self.record = record }
            func handle(_ connection: AsyncConnection) async throws {
                guard let line = try await connection.readLine() else { return }
                if line != Array("spin\n".utf8) { return try await connection.write(line) }
                record.add("spinning")
                while !Task.isCancelled { await Task.yield() }
            }
        }
        let server = try makeServer(mode: .async, handler: .async { Spinner(record) }, start: true)
        defer { server.close() }
        let spinner = try TestClient(server.localAddress)
        try spinner.send("spin\n")
        #expect(waitUntil(timeout: 5) { record.all == ["spinning"] })
        let other = try TestClient(server.localAddress, timeout: 5)
        try other.send("hello\n")
        #expect(try other.readLine() == "hello\n", "the spinning task leaves the loop time for I/O")
    }

    @Test("a lending read that takes part of a chunk leaves the rest, in order, to the next reads of any kind")
    func partialLendingThenOtherReads() throws {
        final class Mixed: StreamAsyncHandler {
            func handle(_ connection: AsyncConnection) async throws {
                var pieces: [String] = []
                func lend(_ count: Int) async throws {
                    try await connection.read(upTo: count) { pieces.append(String(decoding: $0, as: UTF8.self)) }
                }
                try await lend(2)
                pieces.append(String(decoding: try await connection.readLine() ?? [], as: UTF8.self))
                try await lend(2)
                pieces.append(String(decoding: try await connection.read(exactly: 2) ?? [], as: UTF8.self))
                try await connection.write(pieces.joined(separator: "|"))
            }
        }
        let server = try makeServer(mode: .async, handler: .async { Mixed() }, start: true)
        defer { server.close() }
        let client = try TestClient(server.localAddress)
        // One chunk, to a handler already waiting in its first read: it resumes inside the read callback.
        try client.send("abcdef\nxyz\n")
        #expect(try String(decoding: client.readToEnd(limit: 64), as: UTF8.self) == "ab|cdef\n|xy|z\n")
    }

    @Test("a handler that is done before it first waits (it starts at once) closes its connection")
    func handlerDoneBeforeWaiting() throws {
        final class Goodbye: StreamAsyncHandler {
            func handle(_ connection: AsyncConnection) async throws {
                try Array("bye\n".utf8).withUnsafeBytes { try connection.queue($0) }
            }
        }
        let server = try makeServer(mode: .async, handler: .async { Goodbye() }, start: true)
        defer { server.close() }
        for _ in 0..<3 {
            let client = try TestClient(server.localAddress)
            #expect(try String(decoding: client.readToEnd(limit: 64), as: UTF8.self) == "bye\n")
        }
    }
}
