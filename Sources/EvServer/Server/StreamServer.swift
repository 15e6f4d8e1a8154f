import Logging
import Synchronization

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
/// `@unchecked Sendable`: the lifecycle state is in `runtime` (guarded by its mutex), loop-side state lives
/// in `StreamServerCore` (reached only on the loop thread through `LoopBound`), `blockingDescriptors` is
/// behind its own mutex, and the rest is immutable.
public final class StreamServer: @unchecked Sendable {
    /// The configuration the server was created with.
    public let configuration: ServerConfiguration
    /// The address the server listens on, with the real port when port 0 was asked.
    public let localAddress: SocketAddress
    let handler: StreamHandler
    let hooks: ServerHooks
    let logger: Logger

    let runtime: ServerRuntime<StreamServerCore>
    /// Descriptors that blocking handlers are using, so `close()` can wake handlers stuck in a read.
    private let blockingDescriptors = Monitor(Set<CInt>())
    /// Open connections in every mode, and the connection limits (shared by a group's servers).
    let admission: ConnectionAdmission
    /// The group this server belongs to, if any (send and broadcast reach every member).
    private let group: ServerGroupLink?
    private let accepted = Atomic<Int>(0)

    /// Connections accepted and served so far (refused ones not counted): with a group, the share of
    /// this server's loop.
    public var connectionsAccepted: Int { accepted.load(ordering: .relaxed) }
    func countAccepted() { accepted.add(1, ordering: .relaxed) }

    /// Binds and listens.
    ///
    /// - Parameters:
    ///   - configuration: address, execution mode and limits.
    ///   - handler: makes one handler per connection; its style must fit `configuration.mode`.
    ///   - hooks: socketserver's overridable methods, as closures.
    ///   - logger: where the server logs (at `debug` and `trace`, and `info` for handler errors).
    public convenience init(
        configuration: ServerConfiguration,
        handler: StreamHandler,
        hooks: ServerHooks = ServerHooks(),
        logger: Logger = Logger(label: "evserver", factory: { _ in SwiftLogNoOpLogHandler() })
    ) throws(ServerError) {
        try self.init(configuration: configuration, handler: handler, hooks: hooks, logger: logger, admission: nil)
    }

    /// `admission`: the group's shared one, or `nil` for a server of its own; `group`: the group's link and
    /// this member's index in it.
    init(
        configuration: ServerConfiguration, handler: StreamHandler, hooks: ServerHooks, logger: Logger,
        admission sharedAdmission: ConnectionAdmission?, group: (link: ServerGroupLink, index: Int)? = nil
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

        let listener = try Listener.open(configuration, type: SOCK_STREAM)
        let loop: EventLoop
        do {
            localAddress = configuration.address.isUnix ? configuration.address : try listener.localAddress()
            loop = try EventLoop()
        } catch {
            Listener.close(listener, configuration.address)
            if let error = error as? SystemError { throw ServerError.cannotListen(on: configuration.address, error) }
            throw error as! ServerError
        }
        let admission = sharedAdmission ?? ConnectionAdmission(
            maximumConnections: configuration.maximumConnections,
            maximumPerClient: configuration.maximumConnectionsPerClient
        )
        self.admission = admission
        self.group = group?.link
        runtime = ServerRuntime(loop: loop, address: localAddress, configuration: configuration) { pool in
            StreamServerCore(
                listener: listener, loop: loop, configuration: configuration, pool: pool, admission: admission,
                firstConnectionID: UInt64(group?.index ?? 0) << ServerGroupLink.memberShift + 1, logger: logger
            )
        }
        // The first work the loop runs: every session starts after it.
        let core = runtime.core
        runtime.loop.execute { [self] in core.value.server = self }
        group?.link.add(self)
        admission.join(self) { [loop = runtime.loop] in loop.execute { core.value.connectionSlotFreed() } }
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
        try runtime.serveForever()
    }

    /// Starts serving on the server's loop thread and returns at once; `shutdown()` stops it. For programs
    /// that run several servers, or do other work meanwhile.
    public func start() throws(ServerError) {
        try runtime.start()
    }

    /// Serves one client, waiting at most `configuration.timeout` seconds for it (`handleTimeout` is called
    /// when none came).
    ///
    /// In `.event` and `.sync` mode it returns once that client's connection is closed; in `.thread` and
    /// `.pool` mode once the client is handed to a worker. A client rejected by `verifyRequest` counts.
    /// - Returns: `false` when it timed out.
    @discardableResult
    public func handleRequest() throws(ServerError) -> Bool {
        try runtime.handleRequest(timeout: configuration.timeout)
    }

    /// Stops `serveForever()` and waits until it has returned, unless called on the loop thread (from an
    /// event or `.sync` handler), where it only requests the stop, to avoid deadlock. Connections already
    /// open are not closed (`close()` does that). Called while not serving, the next `serveForever()`
    /// returns at once.
    public func shutdown() {
        runtime.shutdown()
    }

    /// Stops serving, closes every connection and the listening socket (removing a Unix socket file),
    /// waits for worker threads, and frees the loop. Idempotent; also fine for a server that never served.
    ///
    /// Called from one of the server's own threads (a handler), it cannot wait for itself: it hands the
    /// work to a helper thread and returns at once.
    public func close() {
        runtime.close(
            // The helper holds the server strongly until the close is complete.
            closeElsewhere: { [self] in close() },
            wakeBlockedHandlers: {
                admission.leave(self)
                if configuration.mode == .async {
                    // Close the connections while the loop still runs: their handlers' tasks are cancelled and
                    // must get to finish on the loop before it goes.
                    let core = runtime.core
                    runtime.loop.execute { core.value.closeConnections() }
                    if !runtime.waitForAsyncTasks(timeout: StreamServer.lastRepliesGrace) {
                        logger.warning("closing with async handlers still running: they ignored cancellation")
                    }
                }
                // In .sync mode a handler may hold the loop thread that shutdown() waits for.
                blockingDescriptors.withLock { descriptors in
                    for descriptor in descriptors { _ = Glibc.shutdown(descriptor, CInt(SHUT_RDWR)) }
                }
            },
            finally: { logger.debug("closed", metadata: ["evserver.listener": "\(localAddress)"]) }
        )
    }

    /// Shuts down gracefully: stops accepting at once (serving the connections the kernel had already
    /// completed, then closing the listener), lets open connections finish for up to `timeout` seconds, then
    /// ends their input (blocking handlers read end of input, event handlers hear `connectionInputEnded`)
    /// so they send their last replies, and closes whatever is left a second later. Blocks until the server
    /// is closed; from one of the server's own threads it hands the work to a helper and returns at once.
    ///
    /// - Returns: `true` when every connection finished by itself before the deadline.
    @discardableResult
    public func shutdownGracefully(timeout: Double) -> Bool {
        if runtime.isOwnThread {
            PosixThread.spawnDetached(name: "evserver-drain") { [self] in shutdownGracefully(timeout: timeout) }
            return false
        }
        guard !runtime.isClosing else { return true }
        let deadline = MonotonicClock.now + timeout
        let core = runtime.core
        let accepted = Monitor(false)
        // Ends the serving session too; not `shutdown()`, which would wait unbounded for a busy .sync handler.
        runtime.loop.execute {
            core.value.stopAccepting()
            accepted.withLock { $0 = true }
        }
        accepted.wait(until: { $0 }, timeout: timeout, then: { _ in })
        let finished = admission.waitUntilNoneOpen(timeout: max(0, deadline - MonotonicClock.now))
        if !finished {
            logger.notice(
                "drain timeout: ending input of the connections still open",
                metadata: ["evserver.listener": "\(localAddress)", "connections": "\(admission.openCount)"]
            )
            runtime.loop.execute { core.value.endInputOfAll() }
            blockingDescriptors.withLock { descriptors in
                for descriptor in descriptors { _ = Glibc.shutdown(descriptor, CInt(SHUT_RD)) }
            }
            _ = admission.waitUntilNoneOpen(timeout: StreamServer.lastRepliesGrace)
        }
        close()
        return finished
    }

    /// Seconds connections get, after their input ended at a graceful shutdown's deadline, to send their
    /// last replies before they are closed.
    static let lastRepliesGrace = 1.0

    // MARK: Blocking handlers

    /// Runs a blocking handler's setup / handle / finish on the calling thread, reports the first error
    /// once, then closes the connection.
    func serveBlocking(descriptor: CInt, peer: SocketAddress) {
        guard case .blocking(let makeHandler) = handler else { preconditionFailure("serveBlocking with \(handler.styleName)") }
        let closing = blockingDescriptors.withLock { descriptors in
            descriptors.insert(descriptor)
            return runtime.isClosing
        }
        let socket = Socket(descriptor: descriptor)
        if closing { _ = Glibc.shutdown(descriptor, CInt(SHUT_RDWR)) }
        let request = StreamRequest(socket: socket, clientAddress: peer, server: self, configuration: configuration)
        let handler = makeHandler()
        let failure = runHandlerPhases(
            setup: { try handler.setup(request) },
            handle: { try handler.handle(request) },
            finish: { try handler.finish(request) }
        )
        if let failure { reportHandlerError(failure, client: peer) }
        blockingDescriptors.withLock { descriptors in
            descriptors.remove(descriptor)
            request.close()
        }
        admission.releaseAndNotify(peer)
    }

    // MARK: Handlers that talk to each other (event and async modes)

    /// Queues `bytes` for connection `id`, from any thread or task; delivered on its loop, after what was
    /// sent to it before. Ignored when the connection has closed. A connection that lets more than 16 write
    /// high water marks pile up is closed as too slow. In a `ServerGroup`, `id` may be any member's.
    public func send(_ bytes: [UInt8], to id: ConnectionID) {
        let target = group?.owner(of: id) ?? self
        let core = target.runtime.core
        target.runtime.loop.execute { core.value.send(bytes, to: id) }
    }

    /// Queues `bytes` for every open connection, or those that joined `topic`, except `except`; from any
    /// thread or task, in order. In a `ServerGroup`, every member's connections.
    public func broadcast(_ bytes: [UInt8], topic: String? = nil, except: ConnectionID? = nil) {
        for server in group?.servers ?? [self] {
            let core = server.runtime.core
            server.runtime.loop.execute { core.value.broadcast(bytes, topic: topic, except: except) }
        }
    }

    /// Reports a handler's error to the `handleError` hook, or logs it.
    func reportHandlerError(_ error: any Error, client: SocketAddress) {
        hooks.report(error, client: client, logger: logger)
    }
}
