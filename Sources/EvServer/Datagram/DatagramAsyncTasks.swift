/// Async mode's handler tasks for a datagram server: long-lived tasks on the loop's task executor, each
/// serving datagrams one after another, so that a datagram costs a call of its handler, not a task.
///
/// The receiver queues the datagrams of a wake-up (`enqueue`, copies into arrays kept for reuse) and hands
/// them over at its end (`flush`): an idle task (one parked, waiting for work) is resumed inside the receive
/// callback (`EventLoop.resumeInline`) and handles queued datagrams one after another, as an event handler
/// would, until none is left (then it parks again) or its handler suspends in an `await`: the next datagram
/// then goes to another idle task, or to a new one, so a handler that awaits never delays the next
/// datagram. At most `maximumIdle` tasks stay parked; others end when their handler returns. `close()` ends
/// the parked ones, and a busy one ends when its handler returns; a task whose handler cancelled it ends
/// too, so every datagram starts in a task that is not cancelled, as it did when each had a task of its own.
/// (The server never cancels them: `close()` waits for them as it did.)
///
/// Loop-confined: the loop thread calls `enqueue`, `flush` and `close`, and the tasks run on the loop's
/// executor, so the hand-off state takes no lock and skips the exclusivity checks (no access outlives a
/// call). `@unchecked Sendable` for that reason: the tasks capture it, and reach it only on the loop thread
/// (`nextDatagram` checks).
final class DatagramAsyncTasks: @unchecked Sendable {
    /// One datagram for a task: a copy the handler owns, and its sender.
    typealias Work = (datagram: [UInt8], client: SocketAddress)

    /// How many tasks may stay parked between datagrams (each holds its first task-allocator slab, ~1 KiB).
    static let maximumIdle = 4
    /// Arrays up to this capacity are kept for the next datagrams (as many as a wake-up queues at most).
    static let maximumSpareCapacity = 4096

    private let handler: any DatagramAsyncHandler
    private let channel: DatagramChannel
    private let context: ServerContext
    private let loop: EventLoop
    /// The parked tasks, the most recently parked last (the next to serve: its memory is the warmest).
    @exclusivity(unchecked) private var idle: [UnsafeContinuation<Work?, Never>] = []
    /// The datagrams of this wake-up (`count` of them, at most a receive batch), from `next` on not yet
    /// handed to a task: plain memory, each moved in by `enqueue` and out by `takeQueued` (an array's
    /// bookkeeping cost more than the rest of the hand-off).
    private let queued: UnsafeMutablePointer<Work>
    @exclusivity(unchecked) private var count = 0
    @exclusivity(unchecked) private var next = 0
    /// Inside `flush`: a task whose handler returns takes the next queued datagram itself.
    @exclusivity(unchecked) private var flushing = false
    /// Arrays of handled datagrams, whose storage the next datagram of the same size reuses when the handler
    /// kept no copy (an array's value semantics decide: a shared buffer is copied before it is written).
    @exclusivity(unchecked) private var spares: [[UInt8]] = []
    /// Set by `close()`: tasks end instead of parking.
    @exclusivity(unchecked) private var closed = false

    init(handler: any DatagramAsyncHandler, channel: DatagramChannel, context: ServerContext) {
        self.handler = handler
        self.channel = channel
        self.context = context
        loop = context.loop
        idle.reserveCapacity(Self.maximumIdle)
        queued = .allocate(capacity: DatagramReceiver.batch)
        spares.reserveCapacity(DatagramReceiver.batch)
    }

    /// `flush` hands every queued datagram over, so none is left to deinitialize.
    deinit {
        queued.deallocate()
    }

    /// Queues a copy of `bytes` for `flush` (at most a receive batch between flushes). On the loop thread.
    @inline(__always)
    func enqueue(_ bytes: UnsafeRawBufferPointer, from client: SocketAddress) {
        var datagram = spares.popLast() ?? []
        if datagram.count == bytes.count {
            datagram.withUnsafeMutableBytes { $0.copyMemory(from: bytes) }  // a copy first if it is shared
        } else {
            datagram = Array(bytes)
        }
        precondition(count < DatagramReceiver.batch, "more datagrams queued than a receive batch")
        (queued + count).initialize(to: (datagram, client))
        count += 1
    }

    /// Hands every queued datagram to a task: an idle one, resumed inside this call (it handles queued
    /// datagrams until none is left or its handler awaits), else a new one, started inside this call. On the
    /// loop thread, in the receive callback.
    func flush() {
        flushing = true
        while next < count {
            let work = takeQueued()
            if let task = idle.popLast() {
                loop.resumeInline { task.resume(returning: work) }
            } else {
                start(with: work)
            }
        }
        flushing = false
        count = 0
        next = 0
    }

    /// The next queued datagram, moved out of the queue (so that its array is the handler's alone).
    @inline(__always)
    private func takeQueued() -> Work {
        defer { next += 1 }
        return (queued + next).move()
    }

    /// Ends the parked tasks, and makes busy ones end when their handler returns. On the loop thread, while
    /// it still runs the tasks (the server's close waits for them); more than once is harmless.
    func close() {
        loop.preconditionInLoop()
        closed = true
        spares = []
        while let task = idle.popLast() { task.resume(returning: nil) }
    }

    /// Starts a task at once (`Task.immediate`): it serves `first` inside this call, then every datagram it
    /// takes or is given, until `nextDatagram` ends it.
    private func start(with first: Work) {
        context.asyncTasks.startNow { [self] in
            var (datagram, client) = first
            while true {
                do {
                    try await handler.handle(datagram, from: client, channel: channel)
                } catch {
                    context.reportHandlerError(error, client: client)
                }
                guard let next = await nextDatagram(after: &datagram) else { break }
                (datagram, client) = next
            }
            context.asyncTasks.ended()
        }
    }

    /// The calling task's next datagram: a queued one at once while `flush` runs, otherwise one `flush` gives
    /// it while it is parked; `nil` when the task is to end (the server is closing, enough tasks are parked,
    /// or its handler cancelled it). `datagram`, the last one, is moved out (left empty) to the spares when
    /// the task goes on.
    /// Parks with the executor-inheriting continuation (see `AsyncConnection.suspend`): no hop, so no
    /// executor-preference lookup, before the wait.
    private nonisolated(nonsending) func nextDatagram(after datagram: inout [UInt8]) async -> Work? {
        loop.preconditionInLoop()
        if closed || Task.isCancelled { return nil }
        if datagram.capacity <= Self.maximumSpareCapacity, spares.count < DatagramReceiver.batch {
            spares.append(datagram)
        }
        datagram = []
        if flushing, next < count { return takeQueued() }
        if idle.count >= Self.maximumIdle { return nil }
        return await _unsafeInheritExecutor_withUnsafeContinuation { idle.append($0) }
    }
}
