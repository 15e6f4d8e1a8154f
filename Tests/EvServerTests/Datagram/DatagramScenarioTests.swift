import EvServer
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// CPython's test_socketserver datagram scenarios, ported, and what socketserver gets wrong with datagrams.
@Suite("datagram scenarios")
struct DatagramScenarioTests {
    @Test("three sequential clients each get their datagram back", arguments: DatagramTransport.allCases, allModes)
    func threeSequentialClients(transport: DatagramTransport, mode: ExecutionMode) throws {
        let server = try makeDatagramServer(try transport.address(), mode: mode)
        if transport != .unixgram { #expect(server.localAddress.port != 0) }
        let serving = ServingThread(server)
        for index in 0..<3 {
            let client = try DatagramTestClient(to: server.localAddress)
            try client.send("hello world \(index)\n")
            #expect(try client.receiveText() == "hello world \(index)\n")
        }
        server.shutdown()
        #expect(serving.join(), "serveForever returns after shutdown")
        #expect(server.statistics.handled == 3)
        // A worker counts its reply just after sending it: the client may be faster.
        #expect(waitUntil(timeout: 5) { server.statistics.repliesSent == 3 })
        server.close()
        if let path = server.localAddress.unixPath {
            #expect(access(path, F_OK) != 0, "close removes the Unix socket file")
        }
    }

    @Test("an oversize datagram is dropped whole and counted, never delivered cut", arguments: [ExecutionMode.event, .pool(threads: 1, queueLimit: 4)])
    func oversizeIsDroppedAndCounted(mode: ExecutionMode) throws {
        let server = try makeDatagramServer(try loopback(), mode: mode) {
            $0.maximumDatagramSize = 100
        }
        defer { server.close() }
        try server.start()
        let client = try DatagramTestClient(to: server.localAddress)
        try client.send([UInt8](repeating: 7, count: 101))
        #expect(waitUntil { server.statistics.oversized == 1 })
        #expect(!client.receivesSomething(within: 0.2), "nothing is delivered for the oversize datagram")
        try client.send([UInt8](repeating: 8, count: 100))
        #expect(try client.receive() == [UInt8](repeating: 8, count: 100), "a datagram of exactly the maximum is whole")
        // The loop counts a pool job after submitting it: the worker's reply can come first.
        #expect(waitUntil(timeout: 5) { server.statistics.handled == 1 })
    }

    @Test("the default maximum is 65 507 bytes; a larger Unix datagram is refused whole")
    func defaultMaximum() throws {
        let server = try makeDatagramServer(try SocketAddress(unixPath: temporarySocketPath()), mode: .event)
        defer { server.close() }
        #expect(server.configuration.maximumDatagramSize == 65_507)
        try server.start()
        let client = try DatagramTestClient(to: server.localAddress)
        let largest = (0..<65_507).map { UInt8(truncatingIfNeeded: $0) }
        try client.send(largest)
        #expect(try client.receive() == largest)
        try client.send(largest + [0])
        #expect(waitUntil { server.statistics.oversized == 1 })
        #expect(!client.receivesSomething(within: 0.2))
    }

    @Test("the channel reports the bound address, with the real port")
    func channelLocalAddress() throws {
        final class Reporting: DatagramEventHandler {
            func channel(_ channel: DatagramChannel, received datagram: UnsafeRawBufferPointer, from client: SocketAddress) {
                channel.send("\(channel.localAddress)", to: client)
            }
        }
        let server = try makeDatagramServer(try loopback(), mode: .event, handler: .event { Reporting() })
        defer { server.close() }
        try server.start()
        let client = try DatagramTestClient(to: server.localAddress)
        try client.send("where?")
        #expect(try client.receiveText() == "\(server.localAddress)")
        #expect(server.localAddress.port != 0)
    }

    @Test("a handler that sends nothing sends nothing (no empty datagram)", arguments: allModes)
    func silentHandlerSendsNothing(mode: ExecutionMode) throws {
        final class Silent: DatagramRequestHandler {
            func handle(_ request: DatagramRequest) throws {}
        }
        final class SilentEvent: DatagramEventHandler {
            func channel(_ channel: DatagramChannel, received datagram: UnsafeRawBufferPointer, from client: SocketAddress) {}
        }
        final class SilentAsync: DatagramAsyncHandler {
            func handle(_ datagram: [UInt8], from client: SocketAddress, channel: DatagramChannel) async throws {}
        }
        let handler = datagramHandler(for: mode, event: { SilentEvent() }, blocking: { Silent() }, async: { SilentAsync() })
        let server = try makeDatagramServer(try loopback(), mode: mode, handler: handler)
        defer { server.close() }
        try server.start()
        let client = try DatagramTestClient(to: server.localAddress)
        try client.send("anything")
        #expect(waitUntil { server.statistics.handled == 1 })
        #expect(!client.receivesSomething(within: 0.3))
        #expect(server.statistics.repliesSent == 0)
    }

    @Test("a Unix client that did not bind gets no reply, and the server goes on answering others", arguments: allModes)
    func unboundUnixClient(mode: ExecutionMode) throws {
        let server = try makeDatagramServer(try SocketAddress(unixPath: temporarySocketPath()), mode: mode)
        defer { server.close() }
        try server.start()
        let anonymous = try DatagramTestClient(to: server.localAddress, bindPath: false)
        for _ in 0..<5 { try anonymous.send("who am I") }
        #expect(waitUntil { server.statistics.repliesUnaddressable == 5 })
        #expect(server.statistics.repliesFailed == 0)
        let named = try DatagramTestClient(to: server.localAddress)
        try named.send("me")
        #expect(try named.receiveText() == "me")
    }

    @Test("a Unix client that does not read its replies loses them, and stalls no one else")
    func unixClientThatDoesNotRead() throws {
        let server = try makeDatagramServer(try SocketAddress(unixPath: temporarySocketPath()), mode: .event)
        defer { server.close() }
        try server.start()
        let deaf = try DatagramTestClient(to: server.localAddress)
        let payload = [UInt8](repeating: 1, count: 1000)
        for _ in 0..<3000 { try deaf.send(payload) }
        #expect(waitUntil { server.statistics.handled == 3000 })
        #expect(waitUntil(timeout: 5) { server.statistics.repliesSent + server.statistics.repliesFailed == 3000 })
        #expect(server.statistics.repliesFailed > 0, "the client's queue filled up and replies were dropped")
        let other = try DatagramTestClient(to: server.localAddress)
        try other.send("still there?")
        #expect(try other.receiveText() == "still there?")
    }

    @Test("pool mode: a flood beyond the queue is dropped and counted, with bounded threads")
    func poolFloodDropsAndCounts() throws {
        let gate = Gate()
        let threadsBefore = threadCount()
        let server = try makeDatagramServer(
            try loopback(), mode: .pool(threads: 1, queueLimit: 2),
            handler: .blocking { GatedDatagramEcho(gate) }
        )
        defer { server.close() }
        try server.start()
        let client = try DatagramTestClient(to: server.localAddress)
        for index in 0..<50 { try client.send("\(index)") }
        #expect(waitUntil { server.statistics.handled + server.statistics.droppedPoolFull == 50 })
        #expect(server.statistics.handled == 3, "one running and two queued")
        #expect(server.statistics.droppedPoolFull == 47)
        #expect(threadCount() - threadsBefore <= 2 + 4, "the loop and one worker (other tests run meanwhile)")
        gate.open()
        var replies: Set<String> = []
        for _ in 0..<3 { replies.insert(try client.receiveText()) }
        #expect(replies == ["0", "1", "2"])
        #expect(!gate.expired)
        try client.send("after")
        #expect(try client.receiveText() == "after")
    }

    @Test("thread mode stops reading at maximumThreads and loses nothing")
    func threadModeIsBounded() throws {
        let gate = Gate()
        let running = PeakCount()
        final class Waiting: DatagramRequestHandler {
            let gate: Gate
            let running: PeakCount
            init(_ gate: Gate, _ running: PeakCount) { self.gate = gate; self.running = running }
            func handle(_ request: DatagramRequest) throws {
                try running.during {
                    try gate.wait()
                    try request.reply(request.datagram)
                }
            }
        }
        let ticks = LoopTicks()
        let server = try makeDatagramServer(
            try loopback(), mode: .thread,
            handler: .blocking { Waiting(gate, running) }, hooks: ticks.hooks
        ) {
            $0.maximumThreads = 2
            $0.serviceActionsInterval = LoopTicks.interval
        }
        defer { server.close() }
        try server.start()
        let client = try DatagramTestClient(to: server.localAddress)
        for index in 0..<10 { try client.send("\(index)") }  // all ten are in the server's socket when send returns
        #expect(waitUntil { server.statistics.handled == 2 })
        #expect(ticks.waitForTicks(), "the loop goes round (and would read more if it did not pause)")
        #expect(server.statistics.handled == 2, "reading paused at the limit")
        gate.open()
        var replies: Set<String> = []
        for _ in 0..<10 { replies.insert(try client.receiveText()) }
        #expect(replies == Set((0..<10).map { "\($0)" }))
        #expect(running.most == 2)
        #expect(!gate.expired)
    }

    @Test("IPv6 wildcard: dual stack by default, IPv6 only on request", arguments: [false, true])
    func ipv6OnlyChoice(ipv6Only: Bool) throws {
        let server = try makeDatagramServer(try SocketAddress(host: "::", port: 0), mode: .event) {
            $0.ipv6Only = ipv6Only
        }
        defer { server.close() }
        try server.start()
        let v4 = try SocketAddress(host: "127.0.0.1", port: server.localAddress.port!)
        let client = try DatagramTestClient(to: v4)
        try client.send("over IPv4")
        if ipv6Only {
            #expect(!client.receivesSomething(within: 0.3), "an IPv6-only socket does not hear IPv4")
            // And the IPv4 port stays free for another server.
            let other = try makeDatagramServer(v4, mode: .event)
            other.close()
        } else {
            #expect(try client.receiveText() == "over IPv4")
        }
    }

    @Test("Unix datagram socket files: stale replaced, live refused, other files untouched")
    func unixSocketFiles() throws {
        let path = temporarySocketPath()
        // A stale socket: bound, then its owner went away without removing it.
        let stale = socket(AF_UNIX, CInt(SOCK_DGRAM.rawValue), 0)
        var (_, storage, length) = rawAddress(try SocketAddress(unixPath: path))
        _ = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(stale, $0, length) } }
        close(stale)
        let server = try makeDatagramServer(try SocketAddress(unixPath: path), mode: .event)
        #expect(throws: ServerError.self) { _ = try makeDatagramServer(try SocketAddress(unixPath: path), mode: .event) }
        try server.start()
        let client = try DatagramTestClient(to: server.localAddress)
        try client.send("ping")
        #expect(try client.receiveText() == "ping", "the live server survived the refused second one")
        server.close()
        #expect(access(path, F_OK) != 0)
        let file = open(path, O_CREAT | O_WRONLY, 0o600)
        close(file)
        #expect(throws: ServerError.self) { _ = try makeDatagramServer(try SocketAddress(unixPath: path), mode: .event) }
        #expect(access(path, F_OK) == 0, "a regular file is never removed")
        unlink(path)
    }
}
