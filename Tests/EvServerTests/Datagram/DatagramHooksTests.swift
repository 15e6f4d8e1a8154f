import EvServer
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("datagram hooks and lifecycle")
struct DatagramHooksTests {
    @Test("a refused datagram is dropped and counted; no handler runs", arguments: allModes)
    func verifyRequestRejects(mode: ExecutionMode) throws {
        let verified = Counter()
        let server = try makeDatagramServer(
            try loopback(), mode: mode,
            hooks: ServerHooks(verifyRequest: { _ in verified.increment(); return false })
        )
        defer { server.close() }
        let client = try DatagramTestClient(to: server.localAddress)
        try client.send("let me in")
        #expect(try server.handleRequest(), "a refused datagram counts as the one request")
        #expect(verified.count == 1)
        #expect(server.statistics.rejected == 1)
        #expect(server.statistics.handled == 0)
        #expect(!client.receivesSomething(within: 0.2))
    }

    @Test("a throwing handler is reported with the sender, and the server keeps serving", arguments: allModes)
    func handleErrorOnce(mode: ExecutionMode) throws {
        struct Boom: Error {}
        let reported = Lock<[SocketAddress]>([])
        final class Failing: DatagramRequestHandler {
            func handle(_ request: DatagramRequest) throws {
                if request.datagram == Array("fail".utf8) { throw Boom() }
                try request.reply(request.datagram)
            }
        }
        final class FailingEvent: DatagramEventHandler {
            func channel(_ channel: DatagramChannel, received datagram: UnsafeRawBufferPointer, from client: SocketAddress) throws {
                if Array(datagram) == Array("fail".utf8) { throw Boom() }
                channel.send(datagram, to: client)
            }
        }
        final class FailingAsync: DatagramAsyncHandler {
            func handle(_ datagram: [UInt8], from client: SocketAddress, channel: DatagramChannel) async throws {
                if datagram == Array("fail".utf8) { throw Boom() }
                channel.send(datagram, to: client)
            }
        }
        let server = try makeDatagramServer(
            try loopback(), mode: mode,
            handler: datagramHandler(for: mode, event: { FailingEvent() }, blocking: { Failing() }, async: { FailingAsync() }),
            hooks: ServerHooks(handleError: { error, client in
                if error is Boom { reported.withLock { $0.append(client) } }
            })
        )
        defer { server.close() }
        try server.start()
        let client = try DatagramTestClient(to: server.localAddress)
        try client.send("fail")
        #expect(waitUntil { reported.withLock { $0.count } == 1 })
        try client.send("fine")
        #expect(try client.receiveText() == "fine")
        #expect(reported.withLock { $0.first?.port } != nil, "the hook gets the sender's address")
    }

    @Test("handleRequest serves one datagram, or times out and calls handleTimeout", arguments: allModes)
    func handleRequestOne(mode: ExecutionMode) throws {
        let timeouts = Counter()
        let server = try makeDatagramServer(
            try loopback(), mode: mode,
            hooks: ServerHooks(handleTimeout: { timeouts.increment() })
        ) { $0.timeout = 0.1 }
        defer { server.close() }
        #expect(try !server.handleRequest())
        #expect(timeouts.count == 1)
        let client = try DatagramTestClient(to: server.localAddress)
        try client.send("one")
        try client.send("two")
        #expect(try server.handleRequest())
        #expect(try client.receiveText() == "one")
        #expect(!client.receivesSomething(within: 0.2), "only one datagram was served")
        #expect(try server.handleRequest())
        #expect(try client.receiveText() == "two")
    }

    @Test("shutdown and close from inside a handler do not deadlock", arguments: allModes)
    func shutdownAndCloseFromHandler(mode: ExecutionMode) throws {
        final class Stopping: DatagramRequestHandler {
            func handle(_ request: DatagramRequest) throws {
                try request.reply(request.datagram)
                request.server.shutdown()
                request.server.close()
            }
        }
        final class StoppingEvent: DatagramEventHandler {
            func channel(_ channel: DatagramChannel, received datagram: UnsafeRawBufferPointer, from client: SocketAddress) {
                channel.send(datagram, to: client)
                channel.server.shutdown()
                channel.server.close()
            }
        }
        final class StoppingAsync: DatagramAsyncHandler {
            func handle(_ datagram: [UInt8], from client: SocketAddress, channel: DatagramChannel) async throws {
                channel.send(datagram, to: client)
                channel.server.shutdown()
                channel.server.close()
            }
        }
        let server = try makeDatagramServer(
            try loopback(), mode: mode,
            handler: datagramHandler(for: mode, event: { StoppingEvent() }, blocking: { Stopping() }, async: { StoppingAsync() })
        )
        let serving = ServingThread(server)
        let port = server.localAddress.port!
        let client = try DatagramTestClient(to: server.localAddress)
        try client.send("bye")
        #expect(try client.receiveText() == "bye")
        #expect(serving.join(), "serveForever returned")
        // Closed, not merely stopped: start() says so, and the socket is gone (its port binds again).
        #expect(waitUntil(timeout: 5) { bindsRawly(port: port, type: SOCK_DGRAM) }, "the socket is closed")
        let error = #expect(throws: ServerError.self) { try server.start() }
        #expect(error?.code == .closed)
    }

    @Test("close handles what the pool has queued, then closes; descriptors and threads return")
    func closeFinishesQueuedWork() throws {
        let descriptorsBefore = openDescriptorCount()
        let gate = Gate()
        do {
            let server = try makeDatagramServer(
                try loopback(), mode: .pool(threads: 1, queueLimit: 8),
                handler: .blocking { GatedDatagramEcho(gate) }
            )
            try server.start()
            let target = try DatagramTestClient(to: server.localAddress)
            for index in 0..<5 { try target.send("\(index)") }
            #expect(waitUntil { server.statistics.handled == 5 })
            _ = PThread { usleep(100_000); gate.open() }  // opens while close() waits: close must wait for the queue
            server.close()
            #expect(!gate.expired)
            #expect(server.statistics.repliesSent == 5, "queued datagrams are answered before close returns")
            var replies: Set<String> = []
            for _ in 0..<5 { replies.insert(try target.receiveText()) }
            #expect(replies.count == 5)
        }
        #expect(waitUntil(timeout: 5) { openDescriptorCount() - descriptorsBefore <= 1 + 4 })
    }
}
