/// Async mode's handler tasks: they run on the loop's task executor, and are counted so that `close()` can
/// wait for them while the loop still runs (a task cancelled at close must get to finish on its loop).
final class AsyncTasks: Sendable {
    /// The loop as a task executor: a task that prefers it runs every step on the loop thread.
    let executor: LoopExecutor
    private let running = Monitor(0)

    init(loop: EventLoop) {
        executor = LoopExecutor(loop: loop)
    }

    /// Starts `body` as a task on the loop, counted until it calls `ended()`, which it must do last.
    ///
    /// (`body` is the task's operation itself, not wrapped in a closure that counts: every async frame a
    /// task holds while it waits is memory an idle connection costs. Inlined, so the closure is made in the
    /// shape `Task` takes, without reabstraction thunks.)
    @discardableResult @inline(__always)
    func start(_ body: @escaping @Sendable () async -> Void) -> Task<Void, Never> {
        running.withLock { $0 += 1 }
        return Task(executorPreference: executor, operation: body)
    }

    /// `start`, but the task starts at once (`Task.immediate`): `body` runs on this thread, inside the
    /// caller, until it first suspends, instead of as a job after the current callback. On the loop thread
    /// only. (A connection's handler: it begins with a read, which then waits without a job having run. A
    /// datagram server's reused tasks: a new one serves its first datagram inside the receive callback.)
    @discardableResult @inline(__always)
    func startNow(_ body: @escaping @Sendable @isolated(any) () async -> Void) -> Task<Void, Never> {
        running.withLock { $0 += 1 }
        return Task.immediate(executorPreference: executor, operation: body)
    }

    /// The task `start` started is ending.
    func ended() {
        running.withLock { $0 -= 1 }
    }

    /// Waits up to `timeout` seconds for every task to end. - Returns: `false` on timeout.
    func waitUntilNoneRun(timeout: Double) -> Bool {
        running.wait(until: { $0 == 0 }, timeout: timeout, then: { _ in }) != nil
    }
}
