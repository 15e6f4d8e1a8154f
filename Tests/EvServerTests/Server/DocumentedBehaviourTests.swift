import EvServer
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What the README promises and no other test showed: the event callbacks for back-pressure and half-close,
/// `maximumThreads` for streams, the registry's `except:` / `leave(topic:)` / sends to a closed id, `noDelay`.
@Suite("documented behaviour")
struct DocumentedBehaviourTests {
    @Test("connectionWritable comes when the queue drains to the low water mark, so a producer can go on")
    func connectionWritable() throws {
        let total = 4 * 1024 * 1024
        let writableCalls = Counter()
        let stalls = Counter()
        final class Producer: StreamEventHandler {
            let total: Int
            let calls: Counter
            let stalls: Counter
            private var produced = 0
            init(total: Int, calls: Counter, stalls: Counter) { self.total = total; self.calls = calls; self.stalls = stalls }
            func connectionOpened(_ connection: StreamConnection) { produce(connection) }
            func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) {}
            func connectionWritable(_ connection: StreamConnection) {
                calls.increment()
                produce(connection)
            }
            /// Writes while the queue is below the high water mark, as the README tells producers to.
            private func produce(_ connection: StreamConnection) {
                let chunk = [UInt8](repeating: 0x63, count: 16 * 1024)
                while connection.isWritable && produced < total {
                    connection.write(chunk)
                    produced += chunk.count
                }
                if produced >= total { connection.close() } else { stalls.increment() }
            }
        }
        let server = try makeServer(handler: .event { Producer(total: total, calls: writableCalls, stalls: stalls) }, start: true)
        defer { server.close() }
        let client = try TestClient(server.localAddress)
        // The client reads nothing until the producer has filled the queue to the high water mark; from
        // there only connectionWritable lets it go on (without it the client would wait in vain).
        #expect(waitUntil(timeout: 10) { stalls.count > 0 }, "the producer reached the high water mark")
        let (ending, received) = client.ending(within: 10)
        #expect(ending == .endOfStream)
        #expect(received.count == total)
        #expect(writableCalls.count > 0)
    }

    @Test("connectionInputEnded: a client's half-close reaches the handler, which may still reply", arguments: [false, true])
    func connectionInputEnded(defaultBehaviour: Bool) throws {
        final class Summing: StreamEventHandler {
            private var count = 0
            func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) { count += bytes.count }
            func connectionInputEnded(_ connection: StreamConnection) {
                connection.write("\(count) bytes\n")
                connection.close()
            }
        }
        let handler: StreamHandler = defaultBehaviour ? .event { EchoHandler() } : .event { Summing() }
        let server = try makeServer(handler: handler, start: true)
        defer { server.close() }
        let client = try TestClient(server.localAddress)
        try client.send("hello")
        client.shutdownWrite()
        let (ending, received) = client.ending()
        #expect(ending == .endOfStream, "the connection closes after the last reply")
        // The default closes once the queued replies are sent (here the echo).
        #expect(String(decoding: received, as: UTF8.self) == (defaultBehaviour ? "hello" : "5 bytes\n"))
    }

    @Test("thread mode stops accepting at maximumThreads and serves the rest when a thread ends")
    func streamMaximumThreads() throws {
        let gate = Gate()
        let accepted = Counter()
        let ticks = LoopTicks()
        let running = PeakCount()
        final class Waiting: StreamRequestHandler {
            let gate: Gate
            let running: PeakCount
            init(_ gate: Gate, _ running: PeakCount) { self.gate = gate; self.running = running }
            func handle(_ request: StreamRequest) throws {
                try running.during {
                    try gate.wait()
                    try request.write("served\n")
                }
            }
        }
        var hooks = ticks.hooks
        hooks.verifyRequest = { _ in accepted.increment(); return true }
        let server = try makeServer(mode: .thread, handler: .blocking { Waiting(gate, running) }, hooks: hooks, start: true) {
            $0.maximumThreads = 2
            $0.serviceActionsInterval = LoopTicks.interval
        }
        defer { server.close() }
        let clients = try (0..<5).map { _ in try TestClient(server.localAddress) }
        #expect(waitUntil(timeout: 5) { accepted.count == 2 })
        #expect(ticks.waitForTicks())
        #expect(accepted.count == 2, "no third connection accepted while two threads run")
        gate.open()
        for client in clients { #expect(try client.readLine() == "served\n") }
        #expect(accepted.count == 5)
        #expect(running.most == 2)
        #expect(!gate.expired)
    }

    @Test("broadcast except: skips one connection; leave(topic:) stops a topic's broadcasts; a send to a closed id reaches no one",
          arguments: [ExecutionMode.event, .async])
    func registry(mode: ExecutionMode) throws {
        /// Says its id on opening; "join" / "leave" the topic "room", answering "ok".
        final class Member: StreamEventHandler, StreamAsyncHandler {
            private var line: [UInt8] = []
            func connectionOpened(_ connection: StreamConnection) { connection.write("id \(connection.id)\n") }
            func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) {
                line += bytes
                while let end = line.firstIndex(of: UInt8(ascii: "\n")) {
                    let command = String(decoding: line[..<end], as: UTF8.self)
                    line.removeSubrange(...end)
                    if command == "join" { connection.join(topic: "room") } else { connection.leave(topic: "room") }
                    connection.write("ok\n")
                }
            }
            func handle(_ connection: AsyncConnection) async throws {
                try await connection.write("id \(connection.id)\n")
                while let line = try await connection.readLine() {
                    if line == Array("join\n".utf8) { connection.join(topic: "room") } else { connection.leave(topic: "room") }
                    try await connection.write("ok\n")
                }
            }
        }
        let server = try makeServer(mode: mode, handler: handler(for: mode, event: { Member() }, blocking: { EchoHandler() }, async: { Member() }), start: true)
        defer { server.close() }
        func connect() throws -> (client: TestClient, id: ConnectionID) {
            let client = try TestClient(server.localAddress)
            let line = try client.readLine()
            return (client, try #require(ConnectionID(line.dropFirst(3).dropLast())))
        }
        let (a, idA) = try connect()
        let (b, _) = try connect()
        for client in [a, b] {
            try client.send("join\n")
            #expect(try client.readLine() == "ok\n")
        }
        // Broadcasts arrive in order: the marker to everyone shows what came before it.
        server.broadcast(Array("not for a\n".utf8), topic: "room", except: idA)
        server.broadcast(Array("marker 1\n".utf8))
        #expect(try b.readLine() == "not for a\n")
        #expect(try b.readLine() == "marker 1\n")
        #expect(try a.readLine() == "marker 1\n", "except: skipped a")

        try b.send("leave\n")
        #expect(try b.readLine() == "ok\n")
        server.broadcast(Array("room only\n".utf8), topic: "room")
        server.broadcast(Array("marker 2\n".utf8))
        #expect(try a.readLine() == "room only\n")
        #expect(try a.readLine() == "marker 2\n")
        #expect(try b.readLine() == "marker 2\n", "b left the room")

        let (c, idC) = try connect()
        c.shutdownWrite()
        #expect(c.ending().ending == .endOfStream)
        let (d, idD) = try connect()
        #expect(idD != idC)
        server.send(Array("ghost\n".utf8), to: idC)
        server.send(Array("for d\n".utf8), to: idD)
        server.send(Array("for a\n".utf8), to: idA)
        #expect(try d.readLine() == "for d\n", "the closed connection's message went nowhere")
        #expect(try a.readLine() == "for a\n")
        server.broadcast(Array("marker 3\n".utf8))
        #expect(try b.readLine() == "marker 3\n")
    }

    @Test("noDelay sets TCP_NODELAY on accepted connections, and leaving it off leaves Nagle on", arguments: [true, false])
    func noDelay(enabled: Bool) throws {
        final class Reporting: StreamRequestHandler {
            func handle(_ request: StreamRequest) throws {
                var value: CInt = -1
                var length = socklen_t(MemoryLayout<CInt>.size)
                getsockopt(request.descriptor, CInt(IPPROTO_TCP), TCP_NODELAY, &value, &length)
                try request.write("\(value == 0 ? 0 : 1)\n")
            }
        }
        let server = try makeServer(mode: .thread, handler: .blocking { Reporting() }, start: true) { $0.noDelay = enabled }
        defer { server.close() }
        let client = try TestClient(server.localAddress)
        let reply = try client.readLine()
        #expect(reply == (enabled ? "1\n" : "0\n"))
    }
}
