internal import CLibEv
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One libev loop, confined to the thread that runs it.
///
/// Threading contract (libev's: "calls with the same loop parameter must be done serially"):
/// - The loop, its watchers and everything they call back into are used only on the thread inside `run()`.
///   Every loop-only entry point starts with `preconditionInLoop()`.
/// - Other threads reach the loop only through `execute(_:)`, which appends to a mutex-protected queue and
///   calls `ev_async_send`, libev's one thread-safe call; the async watcher drains the queue on the loop.
/// - Before `run()` starts and after it returns, no thread runs the loop; `destroy()` frees it then.
///
/// `@unchecked Sendable`: the mutable state is either loop-confined (checked by `preconditionInLoop`),
/// guarded by `queue`'s lock, or atomic (`runningThread`).
package final class EventLoop: @unchecked Sendable {
    /// The `struct ev_loop *`.
    package let raw: OpaquePointer
    /// Owned here: started in `init`, stopped in `destroy`.
    private let wakeup: UnsafeMutablePointer<ev_async>
    /// Work for the loop, and whether the loop is gone (then work is dropped).
    private let queue = Lock<(work: [@Sendable () -> Void], destroyed: Bool)>(([], false))
    /// `pthread_t` of the thread inside `run()`, 0 when none.
    private let runningThread = Atomic<UInt>(0)
    /// The loop's half of a double buffer: drained work is swapped in here, so steady state allocates nothing.
    private var batch: [@Sendable () -> Void] = []
    /// Async jobs enqueued on the loop's own thread (`enqueueInLoop`), and the half being run: plain values
    /// in a double buffer, so steady state allocates nothing. Loop-confined, and no access outlives a call: the
    /// runtime's exclusivity checks would only cost time.
    @exclusivity(unchecked) private var inLoopJobs: [(job: UnownedJob, executor: UnownedTaskExecutor)] = []
    @exclusivity(unchecked) private var inLoopBatch: [(job: UnownedJob, executor: UnownedTaskExecutor)] = []
    @exclusivity(unchecked) private var runningInLoopJobs = false
    /// A job runs inline (`runInLoop`): jobs it enqueues wait.
    @exclusivity(unchecked) private var runningJobInline = false
    /// Inside `resumeInline`: the next job `runInLoop` gets may run at once.
    @exclusivity(unchecked) private var inlineJobAllowed = false

    /// Creates a loop (epoll on Linux) that leaves the signal mask alone, as POSIX requires in a threaded
    /// program.
    ///
    /// Throws `.resourceExhausted` when the process is out of descriptors: libev would otherwise call
    /// `abort()` (`ev_syserr`) when `ev_async_start` cannot create its wake-up eventfd or pipe.
    init() throws(ServerError) {
        // The loop needs two descriptors (epoll, and the eventfd or pipe of its async watcher): make sure
        // two can be opened, by opening a pipe and closing it again, before libev tries.
        var probe: [CInt] = [-1, -1]
        guard pipe(&probe) == 0 else {
            let error = errno
            var limit = rlimit()
            getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
            let message = error == ENFILE
                ? """
                    cannot create an event loop: the system is out of file descriptors (ENFILE): close some, or \
                    raise fs.file-max
                    """
                : error == EMFILE
                ? "cannot create an event loop: out of file descriptors (limit \(limit.rlim_cur)): raise `ulimit -n`"
                : "cannot create an event loop: pipe() failed: \(String(cString: strerror(error)))"
            throw ServerError(.resourceExhausted, message, errno: error)
        }
        close(probe[0])
        close(probe[1])
        guard let raw = ev_loop_new(UInt32(EVFLAG_NOSIGMASK)) else {
            throw ServerError(
                .resourceExhausted,
                "cannot create an event loop (ev_loop_new failed: out of descriptors or memory?)"
            )
        }
        self.raw = raw
        wakeup = .allocate(capacity: 1)
        wakeup.initialize(to: ev_async())
        CLibEv_ev_async_init(wakeup, asyncCallback)
        wakeup.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        ev_async_start(raw, wakeup)
    }

    deinit {
        precondition(
            queue.withLock { $0.destroyed }, "EventLoop freed without destroy(): its epoll descriptor would leak"
        )
    }

    // MARK: Running

    /// Runs the loop on the calling thread until `stop()`; the calling thread owns the loop meanwhile.
    func run() {
        let me = UInt(pthread_self())
        let (exchanged, _) = runningThread.compareExchange(expected: 0, desired: me, ordering: .acquiringAndReleasing)
        precondition(exchanged, "EventLoop.run() called while another thread runs the loop")
        defer { runningThread.store(0, ordering: .releasing) }
        ev_run(raw, 0)
        repeat { drainQueue() } while !inLoopJobs.isEmpty
    }

    /// Makes `run()` return after the current iteration. Any thread.
    func stop() {
        execute { [self] in ev_break(raw, CInt(EVBREAK_ALL)) }
    }

    /// Frees the loop. Only once `run()` has returned (or never ran) and every watcher is stopped.
    func destroy() {
        precondition(runningThread.load(ordering: .acquiring) == 0, "EventLoop.destroy() while the loop runs")
        let first = queue.withLock { queue in
            defer { queue.destroyed = true }
            return !queue.destroyed
        }
        guard first else { return }
        ev_async_stop(raw, wakeup)
        wakeup.deinitialize(count: 1)
        wakeup.deallocate()
        ev_loop_destroy(raw)
    }

    // MARK: Confinement

    /// True on the thread that runs the loop.
    package var inLoop: Bool {
        // pthread_t is an integer on Linux and pthread_equal compares it: inline, for every loop-only call.
        pthread_t(runningThread.load(ordering: .acquiring)) == pthread_self()
    }

    /// Traps unless called on the loop's thread: the guard on every loop-only entry point.
    package func preconditionInLoop(file: StaticString = #fileID, line: UInt = #line) {
        precondition(inLoop, "must be called on the event loop's thread", file: file, line: line)
    }

    // MARK: Cross-thread work

    /// Runs `work` on the loop's thread, in submission order. Safe from any thread and from the loop itself;
    /// after `destroy()` the work is dropped (a late wake-up of an async handler, for example).
    package func execute(_ work: @escaping @Sendable () -> Void) {
        queue.withLock { queue in
            guard !queue.destroyed else { return }
            queue.work.append(work)
            // Under the lock, so `destroy()` cannot free the loop in between.
            ev_async_send(raw, wakeup)
        }
    }

    /// Runs `job` on the loop thread, soon, when called on that thread: a task started there, or resumed
    /// other than inline (`resumeInline`). No lock, no closure, no syscall: the wake-up watcher is
    /// fed (`ev_feed_event` with `EV_CUSTOM`, so only these jobs run), and the job runs in this same loop
    /// iteration. A job enqueued by a job waits for the next iteration (`ev_async_send`), so tasks that keep
    /// resuming each other cannot starve I/O.
    package func enqueueInLoop(_ job: UnownedJob, on executor: UnownedTaskExecutor) {
        preconditionInLoop()
        inLoopJobs.append((job, executor))
        guard inLoopJobs.count == 1 else { return }
        if runningInLoopJobs { ev_async_send(raw, wakeup) } else { ev_feed_event(raw, wakeup, CInt(EV_CUSTOM)) }
    }

    /// Calls `resume`, which resumes a task of this loop from one of the loop's I/O callbacks (an async
    /// connection's input or room arrived), so that the task's job runs inside the call (`runInLoop`): it goes
    /// on as an event handler would, inside the callback, with no queue, no `ev_feed_event` and no second pass
    /// over the pending watchers. When a job is running, the resumed one waits (`enqueueInLoop`), so tasks
    /// that resume each other neither nest nor starve I/O. (A datagram server's parked tasks are resumed
    /// this way too, from its receive callback, each taking the datagrams of the wake-up in turn.)
    @inline(__always)
    package func resumeInline(_ resume: () -> Void) {
        preconditionInLoop()
        if runningInLoopJobs || runningJobInline { return resume() }
        inlineJobAllowed = true
        resume()
        inlineJobAllowed = false
    }

    /// Runs `job` (a task of this loop's executor) at once when `resumeInline` allows it, otherwise queues
    /// it (`enqueueInLoop`).
    package func runInLoop(_ job: UnownedJob, on executor: UnownedTaskExecutor) {
        preconditionInLoop()
        guard inlineJobAllowed else { return enqueueInLoop(job, on: executor) }
        inlineJobAllowed = false
        runningJobInline = true
        job.runSynchronously(on: executor)
        runningJobInline = false
    }

    /// Runs the jobs enqueued in the loop, then the queued work; called by the async watcher on the loop
    /// thread, and once more when the loop ends.
    fileprivate func drainQueue() {
        runInLoopJobs()
        while true {
            queue.withLock { queue in swap(&queue.work, &batch) }
            if batch.isEmpty { return }
            for work in batch { work() }
            batch.removeAll(keepingCapacity: true)
        }
    }

    /// Runs the jobs enqueued in the loop so far (those they enqueue wait for the next call).
    fileprivate func runInLoopJobs() {
        if inLoopJobs.isEmpty { return }
        swap(&inLoopJobs, &inLoopBatch)
        runningInLoopJobs = true
        for (job, executor) in inLoopBatch { job.runSynchronously(on: executor) }
        runningInLoopJobs = false
        inLoopBatch.removeAll(keepingCapacity: true)
    }
}

/// Trampoline for the loop's wake-up watcher.
private func asyncCallback(_ loop: OpaquePointer?, _ watcher: UnsafeMutablePointer<ev_async>?, _ revents: CInt) {
    guard let context = watcher?.pointee.data else { return }
    let loop = Unmanaged<EventLoop>.fromOpaque(context).takeUnretainedValue()
    // EV_CUSTOM alone: fed by `enqueueInLoop`, no other thread sent work.
    if revents & CInt(EV_ASYNC) != 0 { loop.drainQueue() } else { loop.runInLoopJobs() }
}
