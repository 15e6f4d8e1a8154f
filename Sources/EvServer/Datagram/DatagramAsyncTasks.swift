/// Async mode's handler tasks for a datagram server: long-lived tasks on the loop's task executor, each
/// serving datagrams one after another, so that a datagram costs a task's resumption, not a task.
///
/// A datagram goes to an idle task (one parked, waiting for its next datagram), which the receive callback
/// resumes inside itself (`EventLoop.resumeInline`): a handler that does not suspend runs to its end there,
/// as an event handler would, and its task parks again before the next datagram is read. A new task starts
/// only when no task is idle (each is suspended inside its handler, in an `await`), so a handler that awaits
/// never delays the next datagram. At most `maximumIdle` tasks stay parked; others end when their handler
/// returns. `close()` ends the parked ones, and a busy one ends when its handler returns; a task whose
/// handler cancelled it ends too, so every datagram starts in a task that is not cancelled, as it did when
/// each had a task of its own. (The server never cancels them: `close()` waits for them as it did.)
///
/// Loop-confined: the loop thread calls `dispatch` and `close`, and the tasks run on the loop's executor, so
/// the hand-off state takes no lock and skips the exclusivity checks (no access outlives a call).
/// `@unchecked Sendable` for that reason: the tasks capture it, and reach it only on the loop thread
/// (`nextDatagram` checks).
final class DatagramAsyncTasks: @unchecked Sendable {
    /// One datagram for a task: a copy the handler owns, and its sender.
    typealias Work = (datagram: [UInt8], client: SocketAddress)

    /// How many tasks may stay parked between datagrams (each holds its first task-allocator slab, ~1 KiB).
    static let maximumIdle = 4

    private let handler: any DatagramAsyncHandler
    private let channel: DatagramChannel
    private let context: ServerContext
    private let loop: EventLoop
    /// The parked tasks, the most recently parked last (the next to serve: its memory is the warmest).
    @exclusivity(unchecked) private var idle: [UnsafeContinuation<Work?, Never>] = []
    /// Set by `close()`: tasks end instead of parking.
    @exclusivity(unchecked) private var closed = false

    init(handler: any DatagramAsyncHandler, channel: DatagramChannel, context: ServerContext) {
        self.handler = handler
        self.channel = channel
        self.context = context
        loop = context.loop
        idle.reserveCapacity(Self.maximumIdle)
    }

    /// Hands a copy of `bytes` to an idle task, which runs inside this call until its handler returns or
    /// awaits; starts a task when none is idle. On the loop thread.
    @inline(__always)
    func dispatch(_ bytes: UnsafeRawBufferPointer, from client: SocketAddress) {
        let work = (datagram: Array(bytes), client: client)
        guard let task = idle.popLast() else { return start(with: work) }
        loop.resumeInline { task.resume(returning: work) }
    }

    /// Ends the parked tasks, and makes busy ones end when their handler returns. On the loop thread, while
    /// it still runs the tasks (the server's close waits for them); more than once is harmless.
    func close() {
        loop.preconditionInLoop()
        closed = true
        while let task = idle.popLast() { task.resume(returning: nil) }
    }

    /// Starts a task at once (`Task.immediate`): it serves `first` inside this call, then every datagram it
    /// is given while parked, until `nextDatagram()` ends it.
    private func start(with first: Work) {
        context.asyncTasks.startNow { [self] in
            var work: Work? = first
            while let (datagram, client) = work {
                do {
                    try await handler.handle(datagram, from: client, channel: channel)
                } catch {
                    context.reportHandlerError(error, client: client)
                }
                work = await nextDatagram()
            }
            context.asyncTasks.ended()
        }
    }

    /// Parks the calling task until `dispatch` gives it a datagram, or `nil` (the task is to end): at once
    /// when the server is closing, enough tasks are parked, or the task was cancelled (by its handler).
    /// Suspends with the executor-inheriting continuation (see `AsyncConnection.suspend`): no hop, so no
    /// executor-preference lookup, on either side of the wait.
    private nonisolated(nonsending) func nextDatagram() async -> Work? {
        loop.preconditionInLoop()
        if closed || idle.count >= Self.maximumIdle || Task.isCancelled { return nil }
        return await _unsafeInheritExecutor_withUnsafeContinuation { idle.append($0) }
    }
}
