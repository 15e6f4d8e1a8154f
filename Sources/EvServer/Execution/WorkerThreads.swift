#if canImport(Glibc)
import Glibc
#endif

/// `.thread` mode's workers: a thread per job (socketserver's `ThreadingMixIn`: one thread per open
/// connection), at most `maximum` jobs at once. A thread whose job ends waits a short while
/// (`idleLinger`) for the next job before it ends, so a stream of short connections does not start a thread
/// for each; never more threads than the most jobs that ran at once.
///
/// `start` reports whether there is room for another; when there is not, the server stops taking work and
/// `onRoom` is called (from the worker thread, as its job ends) so that it resumes. The state is behind a
/// `WorkQueueLock`; the threads hold this object strongly, so it outlives them.
final class WorkerThreads: Sendable {
    fileprivate struct State {
        /// Given to a thread (new or idle) but not yet registered in `running`: counted before they run, so
        /// `waitUntilNoneRun` never misses one that is still starting.
        var starting = 0
        /// Threads running a job, by `pthread_t`.
        var running: Set<UInt> = []
        /// Threads waiting for a job.
        var idle = 0
        /// Jobs given to idle threads and not yet taken by one.
        var handed: [WorkerJob] = []
        /// Threads alive (running, idle or starting).
        var threads = 0
        /// `waitUntilNoneRun` was called: idle threads end, and no job is handed to one.
        var stopping = false
        var count: Int { starting + running.count }
    }

    /// How long a thread whose job ended waits for another before it ends (seconds).
    static let idleLinger = 2.0

    let maximum: Int
    private let state = WorkQueueLock(State())
    private let onRoom: @Sendable () -> Void

    init(maximum: Int, onRoom: @escaping @Sendable () -> Void) {
        self.maximum = maximum
        self.onRoom = onRoom
    }

    /// Runs `job` on a thread of its own: an idle one when there is one, else a new detached thread.
    /// - Returns: whether another may start (fewer than `maximum` run).
    /// - Throws: the system refused the thread (a process or memory limit); `job` did not run.
    func start(_ job: @escaping @Sendable () -> Void) throws(SystemError) -> Bool {
        let (hasRoom, reused) = state.update { state -> ((Bool, Bool), WorkQueueLock<State>.Wake) in
            state.starting += 1
            let reuse = !state.stopping && state.idle > state.handed.count
            if reuse { state.handed.append(WorkerJob(run: job)) } else { state.threads += 1 }
            return ((state.count < maximum, reuse), reuse ? .one : .none)
        }
        if reused { return hasRoom }
        do {
            try PosixThread.spawnDetached(name: "evserver-work") { [self] in serve(WorkerJob(run: job)) }
        } catch {
            state.withLock(waking: .all) { state in
                state.starting -= 1
                state.threads -= 1
            }
            throw error
        }
        return hasRoom
    }

    /// A worker thread's life: runs `first`, then each job handed to it while it waits idle.
    private func serve(_ first: WorkerJob) {
        let me = UInt(pthread_self())
        var next: WorkerJob? = first
        while let job = next {
            state.withLock { state in
                state.starting -= 1
                state.running.insert(me)
            }
            job.run()
            let wasFull = state.update { state -> (Bool, WorkQueueLock<State>.Wake) in
                let wasFull = state.count == maximum
                state.running.remove(me)
                state.idle += 1
                return (wasFull, state.stopping ? .all : .none)
            }
            if wasFull { onRoom() }
            next = nextJob()
        }
    }

    /// Waits up to `idleLinger` for a job handed to this idle thread; `nil` (and the thread is counted
    /// out) when none comes or the workers stop.
    private func nextJob() -> WorkerJob? {
        let ready = { (state: State) in !state.handed.isEmpty || state.stopping }
        if let job = state.wait(until: ready, timeout: WorkerThreads.idleLinger, then: { $0.takeHanded() }) ?? nil {
            return job
        }
        // Decided under one lock: a job handed between the timeout and here is still taken.
        return state.update { state in
            if let job = state.takeHanded() { return (job, .none) }
            state.idle -= 1
            state.threads -= 1
            return (nil, state.stopping ? .all : .none)  // `waitUntilNoneRun` counts the threads out
        }
    }

    /// Whether `thread` is one of these workers (running a job).
    func contains(_ thread: pthread_t) -> Bool {
        state.withLock { $0.running.contains(UInt(thread)) }
    }

    /// Blocks until every worker has finished its job and every thread has ended.
    func waitUntilNoneRun() {
        state.withLock(waking: .all) { $0.stopping = true }
        state.wait(until: { $0.count == 0 && $0.threads == 0 }, then: { _ in })
    }
}

extension WorkerThreads.State {
    /// The oldest job handed to an idle thread, taken by the calling one (no longer idle), if any.
    mutating func takeHanded() -> WorkerJob? {
        guard !handed.isEmpty else { return nil }
        idle -= 1
        return handed.removeFirst()
    }
}
