#if canImport(Glibc)
import Glibc
#endif

/// `.thread` mode's workers: a detached thread per job, ending with it, at most `maximum` at once.
///
/// `start` reports whether there is room for another; when there is not, the server stops taking work and
/// `onRoom` is called (from the worker thread, as it ends) so that it resumes. The state is behind a
/// `Monitor`; the threads hold this object strongly, so it outlives them.
final class WorkerThreads: Sendable {
    private struct State {
        /// Spawned but not yet registered in `running`: counted before they exist, so `waitUntilNoneRun`
        /// never misses one that is still starting.
        var starting = 0
        /// Threads running a job, by `pthread_t`.
        var running: Set<UInt> = []
        var count: Int { starting + running.count }
    }

    let maximum: Int
    private let state = Monitor(State())
    private let onRoom: @Sendable () -> Void

    init(maximum: Int, onRoom: @escaping @Sendable () -> Void) {
        self.maximum = maximum
        self.onRoom = onRoom
    }

    /// Runs `job` on a new detached thread.
    /// - Returns: whether another may start (fewer than `maximum` run).
    /// - Throws: the system refused the thread (a process or memory limit); `job` did not run.
    func start(_ job: @escaping @Sendable () -> Void) throws(SystemError) -> Bool {
        let hasRoom = state.withLock { state -> Bool in
            state.starting += 1
            return state.count < maximum
        }
        do {
            try PosixThread.spawnDetached(name: "evserver-work") { [self] in
                let me = UInt(pthread_self())
                state.withLock { state in
                    state.starting -= 1
                    state.running.insert(me)
                }
                job()
                let wasFull = state.withLock { state -> Bool in
                    defer { state.running.remove(me) }
                    return state.count == maximum
                }
                if wasFull { onRoom() }
            }
        } catch {
            state.withLock { $0.starting -= 1 }
            throw error
        }
        return hasRoom
    }

    /// Whether `thread` is one of these workers.
    func contains(_ thread: pthread_t) -> Bool {
        state.withLock { $0.running.contains(UInt(thread)) }
    }

    /// Blocks until every worker has finished its job.
    func waitUntilNoneRun() {
        state.wait(until: { $0.count == 0 }, then: { _ in })
    }
}
