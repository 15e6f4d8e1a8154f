import Logging

#if canImport(Glibc)
import Glibc
#endif

/// A stream socket server (TCP over IPv4 or IPv6, or a Unix stream socket) on its own libev loop thread.
///
/// Lifecycle, as socketserver users know it: the initialiser binds and listens (port 0 reports the real
/// port in `localAddress`); `serveForever()` serves until `shutdown()`; `handleRequest()` serves one
/// client; `close()` closes everything. `shutdown()` may be called from any thread, including from a
/// handler, and never polls.
///
/// ```swift
/// final class Upper: StreamRequestHandler {
///     func handle(_ request: StreamRequest) throws {
///         while let line = try request.readLine() {
///             try request.write(String(decoding: line, as: UTF8.self).uppercased())
///         }
///     }
/// }
/// let server = try TCPServer(host: "127.0.0.1", port: 7000, mode: .thread) { Upper() }
/// try server.serveForever()
/// ```
///
/// `@unchecked Sendable`: the lifecycle state is guarded by `lifecycle`'s mutex, loop-side state lives in
/// `StreamServerCore` (reached only on the loop thread through `LoopBound`), and the rest is immutable.
public final class StreamServer: @unchecked Sendable {
    /// The configuration the server was created with.
    public let configuration: ServerConfiguration
    /// The address the server listens on, with the real port when port 0 was asked.
    public let localAddress: SocketAddress
    let handler: StreamHandler
    let hooks: ServerHooks
    let logger: Logger

    private let loop: EventLoop
    private let core: LoopBound<StreamServerCore>
    private let loopThread: pthread_t
    private let pool: WorkerPool?
    private let lifecycle = Monitor(Lifecycle())
    /// Descriptors that blocking handlers are using, so `close()` can wake handlers stuck in a read.
    private let blockingDescriptors = Monitor(Set<CInt>())

    private struct Lifecycle {
        enum Phase { case idle, serving, closed }
        var phase = Phase.idle
        /// `shutdown()` came while idle: the next `serveForever()` returns at once.
        var shutdownRequested = false
        var sessionsStarted = 0
        var sessionsEnded = 0
        var lastSessionTimedOut = false
        /// `close()` has begun: blocking handlers that start now see end of input at once.
        var closing = false
        /// Threads of `.thread` mode spawned but not yet registered in `workerThreads`.
        var startingWorkerThreads = 0
        /// Threads of `.thread` mode running a handler, by `pthread_t`.
        var workerThreads: Set<UInt> = []
        var activeWorkerThreads: Int { startingWorkerThreads + workerThreads.count }
    }

    /// Binds and listens.
    ///
    /// - Parameters:
    ///   - configuration: address, execution mode and limits.
    ///   - handler: makes one handler per connection; its style must fit `configuration.mode`.
    ///   - hooks: socketserver's overridable methods, as closures.
    ///   - logger: where the server logs (at `debug` and `trace`, and `info` for handler errors).
    public init(
        configuration: ServerConfiguration,
        handler: StreamHandler,
        hooks: ServerHooks = ServerHooks(),
        logger: Logger = Logger(label: "evserver", factory: { _ in SwiftLogNoOpLogHandler() })
    ) throws(ServerError) {
        try configuration.validate()
        guard handler.fits(configuration.mode) else {
            throw ServerError(
                .invalidConfiguration,
                "\(handler.styleName) cannot run in \(configuration.mode) mode: use a StreamEventHandler with .event, or a StreamRequestHandler with .sync, .thread or .pool"
            )
        }
        self.configuration = configuration
        self.handler = handler
        self.hooks = hooks
        self.logger = logger

        let listener = try Listener.open(configuration)
        let loop: EventLoop
        do {
            localAddress = configuration.address.isUnix ? configuration.address : try listener.localAddress()
            loop = try EventLoop()
        } catch {
            listener.close()
            if let path = configuration.address.unixPath { unlink(path) }
            if let error = error as? SystemError { throw ServerError.cannotListen(on: configuration.address, error) }
            throw error as! ServerError
        }
        self.loop = loop
        var pool: WorkerPool?
        let coreBox = Monitor<LoopBound<StreamServerCore>?>(nil)
        if case .pool(let threads, let queueLimit) = configuration.mode {
            pool = WorkerPool(threads: threads, queueLimit: queueLimit) {
                loop.execute { coreBox.withLock { $0 }?.value.poolHasRoom() }
            }
        }
        self.pool = pool
        let core = StreamServerCore(listener: listener, loop: loop, configuration: configuration, pool: pool, logger: logger)
        let boundCore = LoopBound(core, loop: loop)
        self.core = boundCore
        coreBox.withLock { $0 = boundCore }
        loopThread = PosixThread.spawn(name: "evserver-loop") { loop.run() }
        // Safe although the loop thread runs: it touches the core only from work queued after this line.
        core.server = self
        logger.debug(
            "listening",
            metadata: ["evserver.listener": "\(localAddress)", "evserver.mode": "\(configuration.mode)"]
        )
    }

    /// Closes the server if its owner did not. The library's own threads hold the server unowned, so
    /// this runs on the owner's thread, and `close()` waits for them before the memory goes.
    deinit {
        close()
    }

    // MARK: Serving

    /// Serves clients until `shutdown()` is called (from any thread), then returns. Blocks the calling
    /// thread; the handlers run on the loop thread or worker threads, never on this one.
    ///
    /// If `shutdown()` was called before, returns at once.
    public func serveForever() throws(ServerError) {
        guard let session = try beginSession(consumingShutdown: true) else { return }
        let core = self.core
        loop.execute { core.value.startServing(session: session, oneRequest: false, timeout: nil) }
        _ = waitForSessionEnd(session)
    }

    /// Starts serving on the server's loop thread and returns at once; `shutdown()` stops it. For programs
    /// that run several servers, or do other work meanwhile.
    public func start() throws(ServerError) {
        guard let session = try beginSession(consumingShutdown: true) else { return }
        let core = self.core
        loop.execute { core.value.startServing(session: session, oneRequest: false, timeout: nil) }
    }

    /// Serves one client, waiting at most `configuration.timeout` seconds for it (`handleTimeout` is called
    /// when none came).
    ///
    /// In `.event` and `.sync` mode it returns once that client's connection is closed; in `.thread` and
    /// `.pool` mode once the client is handed to a worker. A client rejected by `verifyRequest` counts.
    /// - Returns: `false` when it timed out.
    @discardableResult
    public func handleRequest() throws(ServerError) -> Bool {
        guard let session = try beginSession(consumingShutdown: false) else { return false }
        let core = self.core
        let timeout = configuration.timeout
        loop.execute { core.value.startServing(session: session, oneRequest: true, timeout: timeout) }
        return !waitForSessionEnd(session)
    }

    /// Stops `serveForever()` and waits until it has returned, unless called on the loop thread (from an
    /// event or `.sync` handler), where it only requests the stop, to avoid deadlock. Connections already
    /// open are not closed (`close()` does that). Called while not serving, the next `serveForever()`
    /// returns at once.
    public func shutdown() {
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

    /// Stops serving, closes every connection and the listening socket (removing a Unix socket file),
    /// waits for worker threads, and frees the loop. Idempotent; also fine for a server that never served.
    ///
    /// Called from one of the server's own threads (a handler), it cannot wait for itself: it hands the
    /// work to a helper thread and returns at once.
    public func close() {
        if isOwnThread {
            // The helper holds the server strongly until the close is complete.
            PosixThread.spawnDetached(name: "evserver-close") { [self] in close() }
            return
        }
        let first = lifecycle.withLock { state -> Bool in
            defer { state.closing = true }
            return !state.closing
        }
        guard first else { return }
        // Wake blocking handlers first: in .sync mode one may hold the loop thread that shutdown() waits for.
        blockingDescriptors.withLock { descriptors in
            for descriptor in descriptors { _ = Glibc.shutdown(descriptor, CInt(SHUT_RDWR)) }
        }
        shutdown()
        lifecycle.withLock { $0.phase = .closed }
        let core = self.core
        loop.execute { core.value.close() }
        loop.stop()
        PosixThread.join(loopThread)
        pool?.shutdown()
        lifecycle.wait(until: { $0.activeWorkerThreads == 0 }, then: { _ in })
        loop.destroy()
        logger.debug("closed", metadata: ["evserver.listener": "\(localAddress)"])
    }

    // MARK: Sessions

    private func beginSession(consumingShutdown: Bool) throws(ServerError) -> Int? {
        if loop.inLoop {
            throw ServerError(.alreadyServing, "serveForever()/handleRequest() called from a handler on the server's own loop")
        }
        let outcome: Result<Int?, ServerError> = lifecycle.withLock { state in
            switch state.phase {
            case .closed: return .failure(ServerError(.closed, "the server on \(localAddress) is closed"))
            case .serving: return .failure(ServerError(.alreadyServing, "the server on \(localAddress) is already serving"))
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

    // MARK: Blocking handlers

    /// Starts a detached worker thread for one connection (`.thread` mode).
    func startWorkerThread(descriptor: CInt, peer: SocketAddress) {
        // Counted before it exists, so close() never misses a worker that is still starting.
        lifecycle.withLock { $0.startingWorkerThreads += 1 }
        // Unowned: a worker must not keep the server alive; close() (also from deinit) waits for it.
        PosixThread.spawnDetached(name: "evserver-conn") { [unowned(unsafe) self] in
            let me = UInt(pthread_self())
            lifecycle.withLock { state in
                state.startingWorkerThreads -= 1
                state.workerThreads.insert(me)
            }
            serveBlocking(descriptor: descriptor, peer: peer)
            lifecycle.withLock { _ = $0.workerThreads.remove(me) }
        }
    }

    /// True on the loop thread and on this server's worker threads.
    private var isOwnThread: Bool {
        let me = pthread_self()
        return loop.inLoop
            || lifecycle.withLock { $0.workerThreads.contains(UInt(me)) }
            || (pool?.isWorker(me) ?? false)
    }

    /// Runs a blocking handler's setup / handle / finish on the calling thread, reports the first error
    /// once, then closes the connection.
    func serveBlocking(descriptor: CInt, peer: SocketAddress) {
        guard case .blocking(let makeHandler) = handler else { preconditionFailure("serveBlocking with \(handler.styleName)") }
        let closing = blockingDescriptors.withLock { descriptors in
            descriptors.insert(descriptor)
            return lifecycle.withLock { $0.closing }
        }
        let socket = Socket(descriptor: descriptor)
        if closing { _ = Glibc.shutdown(descriptor, CInt(SHUT_RDWR)) }
        let request = StreamRequest(socket: socket, clientAddress: peer, server: self, idleTimeout: configuration.idleTimeout)
        let handler = makeHandler()
        var failure: (any Error)?
        do {
            try handler.setup(request)
            do {
                try handler.handle(request)
            } catch {
                failure = error
            }
            do {
                try handler.finish(request)
            } catch {
                failure = failure ?? error
            }
        } catch {
            failure = error
        }
        if let failure { reportHandlerError(failure, client: peer) }
        blockingDescriptors.withLock { descriptors in
            descriptors.remove(descriptor)
            request.close()
        }
    }

    /// Reports a handler's error to the `handleError` hook, or logs it.
    func reportHandlerError(_ error: any Error, client: SocketAddress) {
        if let handleError = hooks.handleError {
            handleError(error, client)
        } else {
            logger.info("handler failed", metadata: ["connection.peer": "\(client)", "error": "\(error)"])
        }
    }
}
