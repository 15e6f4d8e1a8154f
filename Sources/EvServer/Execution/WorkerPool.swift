#if canImport(Glibc)
import Glibc
#endif

/// A fixed set of worker threads and a bounded queue of jobs, for `.pool` mode.
///
/// The pool counts jobs *in flight* (queued or running). `submit` reports whether there is room for
/// another; when there is not, a stream server stops accepting, and `onRoom` is called (from a worker
/// thread) the moment a job finishes and room opens again, so the server resumes. Nothing is dropped: the
/// connections the server did not accept wait in the kernel's backlog. A datagram server uses `trySubmit`
/// and drops (and counts) what finds no room.
final class WorkerPool: Sendable {
    fileprivate struct State {
        var queue: [WorkerJob] = []
        var queueHead = 0
        var inFlight = 0
        var stopping = false
    }

    /// Most jobs in flight: every thread busy and the queue full.
    let capacity: Int
    /// Wakes one idle worker per job queued (none when all are busy: they find it when they finish).
    private let state: WorkQueueLock<State>
    private let threads: Monitor<[pthread_t]>
    private let onRoom: @Sendable () -> Void

    /// Starts `count` threads.
    /// - Throws: `.resourceExhausted` when the system cannot start them all (those started are stopped).
    init(threads count: Int, queueLimit: Int, onRoom: @escaping @Sendable () -> Void) throws(ServerError) {
        capacity = count + queueLimit
        state = WorkQueueLock(State())
        threads = Monitor([])
        self.onRoom = onRoom
        for index in 0..<count {
            do {
                let thread = try PosixThread.spawn(name: "evserver-wk-\(index)") { [self] in workerLoop() }
                threads.withLock { $0.append(thread) }
            } catch {
                shutdown()
                throw ServerError(
                    .resourceExhausted,
                    """
                    cannot start \(count) pool threads: the system refused thread \(index + 1) (\(error.reason)); \
                    use fewer threads or raise the process or memory limit (ulimit -u, ulimit -v)
                    """,
                    errno: error.errno
                )
            }
        }
    }

    /// Queues a job. - Returns: whether there is room for one more after it.
    func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
        state.withLock(waking: .one) { state in
            precondition(!state.stopping, "WorkerPool.submit after shutdown")
            state.queue.append(WorkerJob(run: job))
            state.inFlight += 1
            return state.inFlight < capacity
        }
    }

    /// Queues a job only when there is room for it (datagram servers, which cannot leave work in a backlog).
    /// - Returns: `false`, and the job is not queued, when every thread is busy and the queue is full.
    func trySubmit(_ job: @escaping @Sendable () -> Void) -> Bool {
        state.withLock(waking: .one) { state in
            precondition(!state.stopping, "WorkerPool.trySubmit after shutdown")
            guard state.inFlight < capacity else { return false }
            state.queue.append(WorkerJob(run: job))
            state.inFlight += 1
            return true
        }
    }

    /// Whether `thread` is one of the pool's workers.
    func isWorker(_ thread: pthread_t) -> Bool {
        threads.withLock { $0.contains { pthread_equal($0, thread) != 0 } }
    }

    /// Lets the workers finish every queued job, then joins them. Call once.
    func shutdown() {
        state.withLock(waking: .all) { $0.stopping = true }
        for thread in threads.withLock({ $0 }) { PosixThread.join(thread) }
    }

    /// Runs jobs until the pool stops and its queue is empty. A worker that finishes a job takes the next
    /// one in the same critical section that counts the finished one out, and sleeps only when none waits.
    private func workerLoop() {
        var next = state.wait(until: { $0.hasJob || $0.stopping }, then: { $0.takeJob() }) ?? nil
        while let job = next {
            job.run()
            let (wasFull, queued) = state.withLock { state in
                defer { state.inFlight -= 1 }
                return (state.inFlight == capacity, state.takeJob())
            }
            if wasFull { onRoom() }
            next = queued ?? state.wait(until: { $0.hasJob || $0.stopping }, then: { $0.takeJob() }) ?? nil
        }
    }
}

extension WorkerPool.State {
    var hasJob: Bool { queueHead < queue.count }

    /// The oldest queued job, if any (the queue's storage is reused once it empties).
    mutating func takeJob() -> WorkerJob? {
        guard hasJob else { return nil }
        let job = queue[queueHead]
        queueHead += 1
        if queueHead == queue.count {
            queue.removeAll(keepingCapacity: true)
            queueHead = 0
        }
        return job
    }
}
