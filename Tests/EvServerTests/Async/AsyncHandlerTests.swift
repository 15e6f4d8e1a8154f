import EvServer
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

private func asyncServer(
    _ address: SocketAddress? = nil, handler: StreamHandler = .async { EchoHandler() },
    hooks: ServerHooks = ServerHooks(), configure: (inout ServerConfiguration) -> Void = { _ in }
) throws -> StreamServer {
    try makeServer(address, mode: .async, handler: handler, hooks: hooks, start: true, configure: configure)
}

@Suite("async handlers")
struct AsyncHandlerTests {
    @Test("lines echo over TCP and Unix, several clients at once, each on the loop thread", arguments: [Transport.tcp4, .unix])
    func echo(transport: Transport) throws {
        let server = try asyncServer(try transport.address())
        defer { server.close() }
        let clients = try (0..<20).map { _ in try TestClient(server.localAddress) }
        for (index, client) in clients.enumerated() { try client.send("line \(index)\n") }
        for (index, client) in clients.enumerated() { #expect(try client.readLine() == "line \(index)\n") }
        for client in clients {
            client.shutdownWrite()
            #expect(try client.readToEnd().isEmpty)
        }
    }

    @Test("a client that resets the connection cancels its handler's task")
    func cancellationOnDisconnect() throws {
        let record = Record()
        final class Sleeper: StreamAsyncHandler {
            let record: Record
            init(_ record: Record) { self.record = record }
            func handle(_ connection: AsyncConnection) async throws {
                _ = try await connection.readLine()
                record.add("waiting")
                do {
                    try await Task.sleep(nanoseconds: 60_000_000_000)
                    record.add("slept")
                } catch is CancellationError {
                    record.add("cancelled")
                }
            }
        }
        let server = try asyncServer(handler: .async { Sleeper(record) })
        defer { server.close() }
        let client = try TestClient(server.localAddress)
        try client.send("hello\n")
        #expect(waitUntil(timeout: 5) { record.all == ["waiting"] })
        client.reset()
        #expect(waitUntil(timeout: 5) { record.all == ["waiting", "cancelled"] })
    }

    @Test("a read that waits longer than the idle timeout throws timedOut")
    func timeouts() throws {
        let record = Record()
        final class Reader: StreamAsyncHandler {
            let record: Record
            init(_ record: Record) { self.record = record }
            func handle(_ connection: AsyncConnection) async throws {
                do {
                    _ = try await connection.readLine()
                } catch let error as ConnectionError {
                    record.add("\(error.code)")
                }
            }
        }
        let server = try asyncServer(handler: .async { Reader(record) }) { $0.idleTimeout = 0.3 }
        defer { server.close() }
        let client = try TestClient(server.localAddress)
        try client.send("no newline")
        #expect(waitUntil(timeout: 5) { record.all == ["timedOut"] })
        #expect(try client.readToEnd().isEmpty, "the connection is closed")
    }

    @Test("writes suspend while the client does not read; nothing is lost when it does")
    func backPressure() throws {
        final class Progress: Sendable { let written = Atomic<Int>(0) }
        let progress = Progress()
        final class Flood: StreamAsyncHandler {
            let progress: Progress
            init(_ progress: Progress) { self.progress = progress }
            func handle(_ connection: AsyncConnection) async throws {
                let chunk = [UInt8](repeating: 0x61, count: 64 * 1024)
                for _ in 0..<256 {  // 16 MiB
                    try await connection.write(chunk)
                    progress.written.add(chunk.count, ordering: .relaxed)
                }
            }
        }
        // The loop calls serviceActions every 10 ms: three calls with no progress between them mean the
        // handler is suspended in a write (a handler that never suspended would have written all 16 MiB).
        let ticks = Counter()
        let server = try asyncServer(handler: .async { Flood(progress) }, hooks: ServerHooks(serviceActions: { ticks.increment() })) {
            $0.serviceActionsInterval = 0.01
        }
        defer { server.close() }
        let client = try TestClient(server.localAddress)
        var lastProgress = -1
        var lastTick = 0
        var quietTicks = 0
        #expect(waitUntil(timeout: 10) {
            let now = progress.written.load(ordering: .relaxed)
            let tick = ticks.count
            if tick != lastTick {
                quietTicks = now == lastProgress && now > 0 ? quietTicks + tick - lastTick : 0
                lastTick = tick
                lastProgress = now
            }
            return quietTicks >= 3 || now == 16 * 1024 * 1024
        }, "the handler neither stalled nor finished")
        // Kernel buffers on both sides plus one high water mark: far below 16 MiB.
        let stalled = progress.written.load(ordering: .relaxed)
        #expect(stalled < 8 * 1024 * 1024, "the handler ran ahead of its client: \(stalled) bytes")
        #expect(try client.readToEnd(limit: 1 << 25).count == 16 * 1024 * 1024)
    }

    @Test("close while handlers are suspended in reads returns promptly and closes every client")
    func closeWhileSuspended() throws {
        final class Reader: StreamAsyncHandler {
            let reading: Counter
            init(_ reading: Counter) { self.reading = reading }
            func handle(_ connection: AsyncConnection) async throws {
                _ = try await connection.read(exactly: 7)  // "partial": once read, the close is an orderly one
                reading.increment()
                _ = try await connection.readLine()
            }
        }
        let reading = Counter()
        let server = try asyncServer(handler: .async { Reader(reading) })
        let clients = try (0..<50).map { _ in try TestClient(server.localAddress) }
        for client in clients { try client.send("partial") }
        #expect(waitUntil(timeout: 10) { reading.count == 50 }, "every handler has read its bytes and waits for a line")
        let started = monotonicNow()
        server.close()
        #expect(monotonicNow() - started < 2)
        for client in clients {
            let (ending, received) = client.ending()
            #expect(ending == .endOfStream, "closed by the server")
            #expect(received.isEmpty)
        }
    }

    @Test("send(to:) and broadcast(topic:) reach connections from any thread, in order")
    func registry() throws {
        final class Joiner: StreamAsyncHandler {
            func handle(_ connection: AsyncConnection) async throws {
                for try await line in connection.lines {
                    if line == Array("join\n".utf8) { connection.join(topic: "room") }
                    try await connection.write("id \(connection.id)\n")
                }
            }
        }
        let server = try asyncServer(handler: .async { Joiner() })
        defer { server.close() }
        let inRoom = try TestClient(server.localAddress)
        let outside = try TestClient(server.localAddress)
        try inRoom.send("join\n")
        let roomID = ConnectionID(try inRoom.readLine().dropFirst(3).dropLast())!
        try outside.send("stay\n")
        _ = try outside.readLine()
        // From this thread, not the loop's.
        for index in 0..<100 { server.broadcast(Array("b\(index)\n".utf8), topic: "room") }
        server.send(Array("direct\n".utf8), to: roomID)
        server.broadcast(Array("all\n".utf8))
        for index in 0..<100 { #expect(try inRoom.readLine() == "b\(index)\n") }
        #expect(try inRoom.readLine() == "direct\n")
        #expect(try inRoom.readLine() == "all\n")
        #expect(try outside.readLine() == "all\n", "the topic's broadcasts did not reach a non-member")
    }

    @Test("a receiver that lets more than 16 high water marks of messages pile up is closed as too slow")
    func slowReceiverClosed() throws {
        let ticks = LoopTicks()
        let server = try asyncServer(handler: .async { TopicMember(topic: "room", greeting: { _ in "joined\n" }) }, hooks: ticks.hooks) { $0.serviceActionsInterval = LoopTicks.interval }
        defer { server.close() }
        let reader = try TestClient(server.localAddress)  // reads nothing until the broadcasts are queued
        #expect(try reader.readLine() == "joined\n")
        let chunk = [UInt8](repeating: 0x62, count: 64 * 1024)
        let total = 256 * chunk.count  // 16 MiB: more than the kernel's buffers and the 1 MiB limit together
        for _ in 0..<256 { server.broadcast(chunk, topic: "room") }
        #expect(ticks.waitForTicks(), "the loop has taken every broadcast")
        let (ending, received) = reader.ending(within: 10)
        #expect(ending == .endOfStream, "the slow receiver was not closed: \(ending)")
        #expect(received.count < total, "the slow receiver was sent everything: its queue grew without bound")
    }

    @Test("an async handler in another mode is refused")
    func styleMismatch() throws {
        #expect(throws: ServerError.self) {
            try StreamServer(
                configuration: ServerConfiguration(address: try loopback(), mode: .event),
                handler: .async { EchoHandler() }
            )
        }
    }
}
