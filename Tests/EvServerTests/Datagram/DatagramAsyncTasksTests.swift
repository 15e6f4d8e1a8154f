import EvServer
import Logging
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Async mode's datagram tasks: reused between datagrams, yet a handler that awaits never delays the next
/// datagram, errors are reported per datagram, and close ends the tasks parked between datagrams.
@Suite("datagram async tasks")
struct DatagramAsyncTasksTests {
    @Test("a handler that awaits does not delay the next datagram: all wait at once, all answered once released")
    func awaitingHandlersRunSideBySide() throws {
        let gate = AsyncGate()
        let server = try makeDatagramServer(try loopback(), mode: .async, handler: .async { GatedAsyncEcho(gate) })
        defer { server.close() }
        try server.start()
        let client = try DatagramTestClient(to: server.localAddress)
        let count = 20
        for index in 0..<count { try client.send("\(index)") }
        #expect(waitUntil { gate.waiting == count }, "every datagram's handler waits at the gate at once")
        #expect(!client.receivesSomething(within: 0.1), "none answered before the gate opens")
        gate.open()
        var replies: Set<String> = []
        for _ in 0..<count { replies.insert(try client.receiveText()) }
        #expect(replies == Set((0..<count).map { "\($0)" }))
        // The tasks are kept and serve on: datagrams sent one at a time are answered as before.
        for index in 0..<5 {
            try client.send("again \(index)")
            #expect(try client.receiveText() == "again \(index)")
        }
    }

    @Test("in a burst, datagrams whose handler does not wait are answered while the others wait")
    func burstMixesWaitingAndPromptHandlers() throws {
        let gate = AsyncGate()
        /// Even datagrams wait at the gate; odd ones are answered at once.
        final class HalfGated: DatagramAsyncHandler {
            let gate: AsyncGate
            init(_ gate: AsyncGate) { self.gate = gate }
            func handle(_ datagram: [UInt8], from client: SocketAddress, channel: DatagramChannel) async throws {
                if let last = datagram.last, (last - 48) % 2 == 0 { await gate.wait() }
                channel.send(datagram, to: client)
            }
        }
        let server = try makeDatagramServer(try loopback(), mode: .async, handler: .async { HalfGated(gate) })
        defer { server.close() }
        try server.start()
        let client = try DatagramTestClient(to: server.localAddress)
        let names = (0..<40).map { "\($0 / 10)\($0 % 10)" }
        for name in names { try client.send(name) }
        var prompt: Set<String> = []
        for _ in 0..<20 { prompt.insert(try client.receiveText()) }
        #expect(prompt == Set(names.filter { Int($0)! % 2 == 1 }), "every odd one, while the even ones wait")
        #expect(gate.waiting == 20)
        gate.open()
        var waited: Set<String> = []
        for _ in 0..<20 { waited.insert(try client.receiveText()) }
        #expect(waited == Set(names.filter { Int($0)! % 2 == 0 }))
    }

    @Test("datagrams sent one after another are served by one task, reused; each error is reported once")
    func tasksAreReusedAndErrorsReportedPerDatagram() throws {
        struct Boom: Error {}
        let reported = Lock<[String]>([])
        let reused = Counter()
        /// Marks its task by escalating its priority: a task that served an earlier datagram starts the next
        /// one escalated already (a new task would not be; a task's address may be reused, its priority not).
        final class Marking: DatagramAsyncHandler {
            let reused: Counter
            init(_ reused: Counter) { self.reused = reused }
            func handle(_ datagram: [UInt8], from client: SocketAddress, channel: DatagramChannel) async throws {
                if Task.currentPriority == .high { reused.increment() }
                withUnsafeCurrentTask { $0?.escalatePriority(to: .high) }
                if datagram.starts(with: Array("fail".utf8)) { throw Boom() }
                channel.send(datagram, to: client)
            }
        }
        let server = try makeDatagramServer(
            try loopback(), mode: .async, handler: .async { Marking(reused) },
            hooks: ServerHooks(handleError: { error, _ in
                if error is Boom { reported.withLock { $0.append("\(error)") } }
            })
        )
        defer { server.close() }
        try server.start()
        let client = try DatagramTestClient(to: server.localAddress)
        var failures = 0
        for index in 0..<12 {
            if index % 3 == 0 {
                failures += 1
                try client.send("fail \(index)")
                #expect(waitUntil { reported.withLock { $0.count } == failures }, "reported once, as it happened")
            } else {
                try client.send("fine \(index)")
                #expect(try client.receiveText() == "fine \(index)")
            }
        }
        #expect(reported.withLock { $0.count } == 4, "one report per failing datagram, none twice")
        #expect(reused.count == 11, "one task served all twelve, one after another, failing or not")
        #expect(server.statistics.handled == 12)
    }

    @Test("a task its handler cancels serves no further datagram: the next one starts uncancelled")
    func cancelledTaskIsNotReused() throws {
        final class Cancelling: DatagramAsyncHandler {
            func handle(_ datagram: [UInt8], from client: SocketAddress, channel: DatagramChannel) async throws {
                channel.send(Task.isCancelled ? "cancelled" : "fresh", to: client)
                if datagram == Array("cancel".utf8) { withUnsafeCurrentTask { $0?.cancel() } }
            }
        }
        let server = try makeDatagramServer(try loopback(), mode: .async, handler: .async { Cancelling() })
        defer { server.close() }
        try server.start()
        let client = try DatagramTestClient(to: server.localAddress)
        for datagram in ["cancel", "next", "cancel", "next"] {
            try client.send(datagram)
            #expect(try client.receiveText() == "fresh", "\(datagram): the handler starts in an uncancelled task")
        }
    }

    @Test("close ends the tasks parked between datagrams: it returns promptly, and nothing is left")
    func closeEndsParkedTasks() throws {
        let gate = AsyncGate()
        let log = CapturingLogHandler()
        let handler = Lock<WeakHandlerBox?>(nil)
        var configuration = ServerConfiguration(address: try loopback(), mode: .async)
        configuration.timeout = handleRequestBound
        var server: DatagramServer? = try DatagramServer(
            configuration: configuration,
            handler: .async {
                let made = GatedAsyncEcho(gate)
                handler.withLock { $0 = WeakHandlerBox(made) }
                return made
            },
            logger: Logger(label: "test") { _ in log }
        )
        try server!.start()
        let client = try DatagramTestClient(to: server!.localAddress)
        // Eight at once make eight tasks; released, some park (a bounded few) and the rest end.
        for index in 0..<8 { try client.send("\(index)") }
        #expect(waitUntil { gate.waiting == 8 })
        gate.open()
        for _ in 0..<8 { _ = try client.receive() }
        try client.send("parks")
        #expect(try client.receiveText() == "parks")
        let started = monotonicNow()
        server!.close()
        let took = monotonicNow() - started
        #expect(took < 0.9, "close does not wait out its grace for tasks that only wait for a datagram (\(took) s)")
        let warnings = log.entries.withLock { $0.filter { $0.message.contains("still running") } }
        #expect(warnings.isEmpty, "no task was left running at close")
        server = nil
        #expect(
            waitUntil(timeout: 5) { handler.withLock { $0?.object == nil } }, "the tasks ended and let the handler go"
        )
    }
}

/// A weak reference to a handler, to see it freed.
final class WeakHandlerBox: @unchecked Sendable {
    weak var object: AnyObject?
    init(_ object: AnyObject) { self.object = object }
}

/// Async datagram echo that awaits `gate` (suspending its task; the loop goes on) before replying.
final class GatedAsyncEcho: DatagramAsyncHandler {
    let gate: AsyncGate
    init(_ gate: AsyncGate) { self.gate = gate }
    func handle(_ datagram: [UInt8], from client: SocketAddress, channel: DatagramChannel) async throws {
        await gate.wait()
        channel.send(datagram, to: client)
    }
}

/// A gate tasks await without holding a thread; `open()` (any thread) lets every waiter and later comer on.
final class AsyncGate: Sendable {
    private let state = Lock<(isOpen: Bool, waiters: [CheckedContinuation<Void, Never>], arrived: Int)>(
        (false, [], 0)
    )

    /// How many tasks have reached the gate while it was shut.
    var waiting: Int { state.withLock { $0.arrived } }

    func wait() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let isOpen = state.withLock { state in
                if !state.isOpen {
                    state.waiters.append(waiter)
                    state.arrived += 1
                }
                return state.isOpen
            }
            if isOpen { waiter.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { state in
            state.isOpen = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}
