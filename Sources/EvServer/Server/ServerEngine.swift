import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The lifecycle every server shares, whatever its transport: it owns the socket, the loop and its thread,
/// the workers and the lifecycle, and runs serve forever / start / handle one request / shutdown (from any
/// thread) / graceful shutdown / close. A transport plugs in through `ServerTransport` (the loop side) and
/// `TransportServer` (what its facade adds to closing and draining).
///
/// `@unchecked Sendable`: the mutable state is in `lifecycle` (its monitor), `transport` is reached only on
/// the loop thread (through `LoopBound`), and everything else is immutable after `init`.
final class ServerEngine<Transport: ServerTransport>: @unchecked Sendable {
    let context: ServerContext
    let transport: LoopBound<Transport>
    private let loopThread: pthread_t

    /// Checks the configuration and the handler's style, opens the socket (or takes `shared`, a group
    /// member's), makes the loop and the workers, the transport (on this thread, before the loop runs),
    /// then starts the loop thread. On failure nothing is left open.
    init(
        configuration: ServerConfiguration, kind: ServerSocket.Kind, handler: HandlerStyle, shared: ServerSocket?,
        hooks: ServerHooks, logger: Logger, makeTransport: (ServerContext) -> Transport
    ) throws(ServerError) {
        let socket = try ServerSocket.open(
            configuration, for: kind, handler: handler, unless: shared, configure: hooks.configureListeningSocket
        )
        let transportBox = Lock<LoopBound<Transport>?>(nil)
        let context: ServerContext
        do throws(ServerError) {
            let loop = try EventLoop()
            let workers: Workers
            do {
                workers = try Workers(mode: configuration.mode, maximumThreads: configuration.maximumThreads) {
                    loop.execute { transportBox.withLock { $0 }?.value.intake.resume(.workersBusy) }
                }
            } catch {
                loop.destroy()
                throw error
            }
            context = ServerContext(
                configuration: configuration, hooks: hooks, logger: logger, socket: socket, loop: loop,
                workers: workers, asyncTasks: AsyncTasks(loop: loop),
                lifecycle: ServerLifecycle(address: socket.localAddress),
                metrics: ServerMetrics(socket.localAddress, kind: kind)
            )
        } catch {
            socket.close()
            throw error
        }
        self.context = context
        let transport = LoopBound(makeTransport(context), loop: context.loop)
        self.transport = transport
        transportBox.withLock { $0 = transport }
        do {
            loopThread = try PosixThread.spawn(name: "evserver-loop") { context.loop.run() }
        } catch {
            context.workers.stop()
            context.loop.destroy()
            socket.close()
            throw ServerError(
                .resourceExhausted,
                """
                cannot start the loop thread of the server on \(socket.localAddress): \(error.reason) \
                (raise the process or memory limit)
                """,
                errno: error.errno
            )
        }
        logger.debug(
            "listening",
            metadata: ["evserver.listener": "\(context.localAddress)", "evserver.mode": "\(configuration.mode)"]
        )
    }

    /// Links the transport to its server, as the first work the loop runs (every session starts after it).
    func attach(_ server: Transport.Server) {
        let transport = self.transport
        // Unretained: a strong reference here could make the loop thread drop the server's last reference and
        // run its deinit (and close) on the loop itself. The transport only stores it; if the server is gone
        // by then, its close is queued right behind and ends the transport before anyone uses it.
        let unretained = Unmanaged.passUnretained(server)
        loop.execute { transport.value.attach(to: unretained) }
    }

    var loop: EventLoop { context.loop }
    var lifecycle: ServerLifecycle { context.lifecycle }

    // MARK: Serving

    func serveForever() throws(ServerError) {
        guard let session = try beginSession(consumingShutdown: true) else { return }
        startSession(session, oneRequest: false, timeout: nil)
        lifecycle.waitForEnd(of: session)
    }

    func start() throws(ServerError) {
        guard let session = try beginSession(consumingShutdown: true) else { return }
        startSession(session, oneRequest: false, timeout: nil)
    }

    /// - Returns: `false` when it timed out.
    func handleRequest() throws(ServerError) -> Bool {
        guard let session = try beginSession(consumingShutdown: false) else { return false }
        startSession(session, oneRequest: true, timeout: context.configuration.timeout)
        return !lifecycle.waitForEnd(of: session)
    }

    /// Stops the session; waits for it to end unless on the loop thread (a handler), where it only asks.
    func shutdown() {
        guard let session = lifecycle.requestShutdown() else { return }
        let transport = self.transport
        loop.execute { transport.value.intake.stopServing(session: session) }
        if loop.inLoop { return }
        lifecycle.waitForEnd(of: session)
    }

    private func beginSession(consumingShutdown: Bool) throws(ServerError) -> Int? {
        if loop.inLoop {
            throw ServerError(
                .alreadyServing, "serveForever()/handleRequest() called from a handler on the server's own loop"
            )
        }
        return try lifecycle.begin(consumingShutdown: consumingShutdown)
    }

    private func startSession(_ session: Int, oneRequest: Bool, timeout: Double?) {
        let transport = self.transport
        loop.execute { transport.value.intake.startServing(session: session, oneRequest: oneRequest, timeout: timeout) }
    }

    // MARK: Closing

    /// Closes the server once: wakes handlers blocked in I/O (a `.sync` handler may hold the loop thread),
    /// lets async handlers end, stops the session, the transport, the loop thread and the workers, frees the
    /// loop and closes the socket. From one of the server's own threads it cannot wait for itself: a helper
    /// thread does it (holding `server` until done) and this returns at once.
    func close(wakingBlockedHandlers wake: @escaping @Sendable () -> Void) {
        if isOwnThread {
            // The helper holds the engine, not the server: this may run from the server's deinit.
            PosixThread.spawnDetachedOrRunHere(name: "evserver-close") { [self] in close(wakingBlockedHandlers: wake) }
            return
        }
        guard lifecycle.beginClosing() else { return }
        wake()
        let transport = self.transport
        if context.configuration.mode == .async {
            // While the loop still runs: the handlers' tasks are cancelled and must get to finish on it.
            loop.execute { transport.value.closeConnections() }
            if !context.asyncTasks.waitUntilNoneRun(timeout: context.lastRepliesGrace) {
                context.logger.warning("closing with async handlers still running: they ignored cancellation")
            }
        }
        shutdown()
        lifecycle.markClosed()
        loop.execute {
            transport.value.close()
            transport.value.intake.close()
        }
        loop.stop()
        PosixThread.join(loopThread)
        context.workers.stop()
        loop.destroy()
        context.socket.close()
        context.logger.debug("closed", metadata: ["evserver.listener": "\(context.localAddress)"])
        lifecycle.markFinished()
    }

    /// Stops taking work at once (taking what already waits), lets open work finish until `timeout`
    /// (`TransportServer.drainOpenWork`), then closes. From one of the server's own threads a helper does it.
    /// - Returns: `true` when all open work finished by itself in time.
    func shutdownGracefully(_ server: some TransportServer<Transport>, timeout: Double) -> Bool {
        if isOwnThread {
            PosixThread.spawnDetachedOrRunHere(name: "evserver-drain") { server.shutdownGracefully(timeout: timeout) }
            return false
        }
        guard !lifecycle.isClosing else { return true }
        let deadline = MonotonicClock.now + timeout
        let transport = self.transport
        let stopped = Monitor(false)
        // Not `shutdown()`, which would wait unbounded for a busy .sync handler.
        loop.execute {
            transport.value.intake.stop()
            transport.value.takeWaitingWork()
            stopped.withLock { $0 = true }
        }
        stopped.wait(until: { $0 }, timeout: timeout, then: { _ in })
        let finished = server.drainOpenWork(until: deadline)
        close(wakingBlockedHandlers: server.wakeBlockedHandlers)
        return finished
    }


    /// True on the loop thread and on this server's worker threads.
    var isOwnThread: Bool {
        loop.inLoop || context.workers.contains(pthread_self())
    }
}
