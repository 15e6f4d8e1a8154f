#if canImport(Glibc)
import Glibc
#endif

/// The loop-side half of a server, as `ServerRuntime` drives it. Every method runs on the loop thread.
protocol ServerCore: AnyObject, SendableMetatype {
    /// Starts the session `number`: `oneRequest` for `handleRequest()`, which waits at most `timeout`.
    func startServing(session number: Int, oneRequest: Bool, timeout: Double?)
    /// Ends the session `number` (or whichever runs, when `nil`).
    func stopServing(session number: Int?)
    /// A worker (pool job or `.thread` worker) finished while the workers were full: resume taking work.
    func workersHaveRoom()
    /// Stops every watcher and closes what the loop owns. The loop may then be destroyed.
    func close()
}

/// The lifecycle every server shares, whatever its transport: the loop thread, the serving sessions
/// (`serveForever`, `start`, `handleRequest`), `shutdown` from any thread, `close`, and the worker threads
/// of `.thread` and `.pool` mode.
///
/// `@unchecked Sendable`: the mutable state is in `lifecycle` and `asyncTasks`, each guarded by its mutex; `core` is reached
/// only on the loop thread (through `LoopBound`); everything else is immutable after `init`.
final class ServerRuntime<Core: ServerCore>: @unchecked Sendable {
    let loop: EventLoop
    /// Async mode: the handlers' task executor (this loop), and how many of their tasks run (close waits
    /// for them while the loop still runs).
    let executor: LoopExecutor
    private let asyncTasks = Monitor(0)
    let core: LoopBound<Core>
    /// `.pool` mode's workers; `nil` in the other modes.
    let pool: WorkerPool?
    /// `.thread` mode: the most worker threads at once; at the limit the server takes no more work
    /// until one ends.
    let maximumThreads: Int
    /// For messages: the address the server is bound to.
    private let address: SocketAddress
    private let loopThread: pthread_t
    private let lifecycle = Monitor(Lifecycle())

    private struct Lifecycle {
        enum Phase { case idle, serving, closed }
        var phase = Phase.idle
        /// `shutdown()` came while idle: the next `serveForever()` returns at once.
        var shutdownRequested = false
        var sessionsStarted = 0
        var sessionsEnded = 0
        var lastSessionTimedOut = false
        /// `close()` has begun.
        var closing = false
        /// Threads of `.thread` mode spawned but not yet registered in `workerThreads`.
        var startingWorkerThreads = 0
        /// Threads of `.thread` mode running a handler, by `pthread_t`.
        var workerThreads: Set<UInt> = []
        var activeWorkerThreads: Int { startingWorkerThreads + workerThreads.count }
    }

    /// Creates the pool (in `.pool` mode) and the core, then starts the loop thread.
    init(
        loop: EventLoop, address: SocketAddress, configuration: ServerConfiguration,
        makeCore: (WorkerPool?) -> Core
    ) {
        self.loop = loop
        executor = LoopExecutor(loop: loop)
        self.address = address
        maximumThreads = configuration.maximumThreads
        let coreBox = Monitor<LoopBound<Core>?>(nil)
        if case .pool(let threads, let queueLimit) = configuration.mode {
            pool = WorkerPool(threads: threads, queueLimit: queueLimit) {
                loop.execute { coreBox.withLock { $0 }?.value.workersHaveRoom() }
            }
        } else {
            pool = nil
        }
        let core = LoopBound(makeCore(pool), loop: loop)
        self.core = core
        coreBox.withLock { $0 = core }
        loopThread = PosixThread.spawn(name: "evserver-loop") { loop.run() }
    }

    // MARK: Serving

    func serveForever() throws(ServerError) {
        guard let session = try beginSession(consumingShutdown: true) else { return }
        startSession(session, oneRequest: false, timeout: nil)
        _ = waitForSessionEnd(session)
    }

    func start() throws(ServerError) {
        guard let session = try beginSession(consumingShutdown: true) else { return }
        startSession(session, oneRequest: false, timeout: nil)
    }

    /// - Returns: `false` when it timed out.
    func handleRequest(timeout: Double?) throws(ServerError) -> Bool {
        guard let session = try beginSession(consumingShutdown: false) else { return false }
        startSession(session, oneRequest: true, timeout: timeout)
        return !waitForSessionEnd(session)
    }

    func shutdown() {
        let session: Int? = lifecycle.withLock { state in
            switch state.phase {
            case .serving: return state.sessionsStarted
            case .idle:
                state.shutdownRequested = true
                return nil
            case .closed: return nil
            }
        }
        guard let session else { return }
        let core = self.core
        loop.execute { core.value.stopServing(session: session) }
        if loop.inLoop { return }
        lifecycle.wait(until: { $0.sessionsEnded >= session || $0.phase == .closed }, then: { _ in })
    }

    /// Closes the server once: `wakeBlockedHandlers` first (a `.sync` handler may hold the loop thread),
    /// then the session, the core, the loop thread, the workers, the loop; `finally` last, when no thread
    /// of the server runs any more.
    ///
    /// On one of the server's own threads it cannot wait for itself: it runs `closeElsewhere` on a helper
    /// thread instead (which should call the owner's `close()` again) and returns at once.
    func close(
        closeElsewhere: @escaping @Sendable () -> Void,
        wakeBlockedHandlers: () -> Void = {},
        finally: () -> Void = {}
    ) {
        if isOwnThread {
            PosixThread.spawnDetached(name: "evserver-close", closeElsewhere)
            return
        }
        let first = lifecycle.withLock { state -> Bool in
            defer { state.closing = true }
            return !state.closing
        }
        guard first else { return }
        wakeBlockedHandlers()
        shutdown()
        lifecycle.withLock { $0.phase = .closed }
        let core = self.core
        loop.execute { core.value.close() }
        loop.stop()
        PosixThread.join(loopThread)
        pool?.shutdown()
        lifecycle.wait(until: { $0.activeWorkerThreads == 0 }, then: { _ in })
        loop.destroy()
        finally()
    }

    /// True once `close()` has begun.
    var isClosing: Bool { lifecycle.withLock { $0.closing } }

    // MARK: Sessions

    private func startSession(_ session: Int, oneRequest: Bool, timeout: Double?) {
        let core = self.core
        loop.execute { core.value.startServing(session: session, oneRequest: oneRequest, timeout: timeout) }
    }

    private func beginSession(consumingShutdown: Bool) throws(ServerError) -> Int? {
        if loop.inLoop {
            throw ServerError(.alreadyServing, "serveForever()/handleRequest() called from a handler on the server's own loop")
        }
        let outcome: Result<Int?, ServerError> = lifecycle.withLock { state in
            switch state.phase {
            case .closed: return .failure(ServerError(.closed, "the server on \(address) is closed"))
            case .serving: return .failure(ServerError(.alreadyServing, "the server on \(address) is already serving"))
            case .idle: break
            }
            if consumingShutdown && state.shutdownRequested {
                state.shutdownRequested = false
                return .success(nil)
            }
            state.phase = .serving
            state.sessionsStarted += 1
            return .success(state.sessionsStarted)
        }
        return try outcome.get()
    }

    /// - Returns: whether the session timed out.
    private func waitForSessionEnd(_ session: Int) -> Bool {
        lifecycle.wait(until: { $0.sessionsEnded >= session || $0.phase == .closed }) { $0.lastSessionTimedOut } ?? false
    }

    /// Called by the core on the loop thread when a session ends.
    func sessionEnded(timedOut: Bool) {
        lifecycle.withLock { state in
            if state.phase == .serving { state.phase = .idle }
            state.sessionsEnded = state.sessionsStarted
            state.lastSessionTimedOut = timedOut
            state.shutdownRequested = false
        }
    }

    // MARK: Async handlers

    func asyncTaskStarted() { asyncTasks.withLock { $0 += 1 } }
    func asyncTaskEnded() { asyncTasks.withLock { $0 -= 1 } }

    /// Waits up to `timeout` seconds for every async handler's task to end. - Returns: `false` on timeout.
    func waitForAsyncTasks(timeout: Double) -> Bool {
        asyncTasks.wait(until: { $0 == 0 }, timeout: timeout, then: { _ in }) != nil
    }

    // MARK: Workers

    /// Runs `body` on a new detached worker thread (`.thread` mode).
    ///
    /// - Returns: whether another may start (fewer than `maximumThreads` run). When not, the core stops
    ///   taking work; `workersHaveRoom()` is called on the loop when a thread ends.
    func startWorkerThread(_ body: @escaping @Sendable () -> Void) -> Bool {
        // Counted before it exists, so close() never misses a worker that is still starting.
        let hasRoom = lifecycle.withLock { state -> Bool in
            state.startingWorkerThreads += 1
            return state.activeWorkerThreads < maximumThreads
        }
        // Unowned: the runtime lives as long as its server, and close() (also from deinit) waits for workers.
        PosixThread.spawnDetached(name: "evserver-work") { [unowned(unsafe) self] in
            let me = UInt(pthread_self())
            lifecycle.withLock { state in
                state.startingWorkerThreads -= 1
                state.workerThreads.insert(me)
            }
            body()
            // Last use of `self`: once the thread is unregistered, close() may free the server. The wake-up
            // is queued under the lock for that reason (a loop that already stopped just never runs it).
            lifecycle.withLock { state in
                if state.activeWorkerThreads == maximumThreads && state.phase != .closed {
                    let core = self.core
                    loop.execute { core.value.workersHaveRoom() }
                }
                state.workerThreads.remove(me)
            }
        }
        return hasRoom
    }

    /// True on the loop thread and on this server's worker threads.
    var isOwnThread: Bool {
        let me = pthread_self()
        return loop.inLoop
            || lifecycle.withLock { $0.workerThreads.contains(UInt(me)) }
            || (pool?.isWorker(me) ?? false)
    }
}
