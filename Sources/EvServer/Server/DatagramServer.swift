import Logging

#if canImport(Glibc)
import Glibc
#endif

/// A datagram socket server (UDP over IPv4 or IPv6, or a Unix datagram socket) on its own libev loop
/// thread, with the stream servers' lifecycle, hooks and execution modes.
///
/// Unlike socketserver: a datagram larger than `maximumDatagramSize` is dropped whole and counted, never
/// delivered cut; a handler that sends nothing sends nothing; and a flood never makes unbounded threads or
/// queues (`.pool` mode drops and counts what exceeds its queue, `.thread` mode stops reading at
/// `maximumThreads`). `statistics` tells what happened to every datagram.
///
/// ```swift
/// final class Upper: DatagramRequestHandler {
///     func handle(_ request: DatagramRequest) throws {
///         try request.reply(String(decoding: request.datagram, as: UTF8.self).uppercased())
///     }
/// }
/// let server = try UDPServer(host: "127.0.0.1", port: 7000, mode: .pool(threads: 4, queueLimit: 256)) { Upper() }
/// try server.serveForever()
/// ```
///
/// `@unchecked Sendable`: the lifecycle state is in `runtime` (guarded by its mutex), loop-side state lives
/// in `DatagramServerCore` (reached only on the loop thread through `LoopBound`), the socket is shared as
/// `DatagramSocket` explains, and the rest is immutable.
public final class DatagramServer: @unchecked Sendable {
    /// The configuration the server was created with.
    public let configuration: ServerConfiguration
    /// The address the server is bound to, with the real port when port 0 was asked.
    public let localAddress: SocketAddress
    let handler: DatagramHandler
    let hooks: ServerHooks
    let logger: Logger
    let runtime: ServerRuntime<DatagramServerCore>
    private let socket: DatagramSocket

    /// Binds the socket.
    ///
    /// - Parameters:
    ///   - configuration: address, execution mode, `maximumDatagramSize`.
    ///   - handler: the handler style must fit `configuration.mode`.
    ///   - hooks: `verifyRequest` runs for each datagram (a refused one is dropped and counted).
    ///   - logger: where the server logs.
    public init(
        configuration: ServerConfiguration,
        handler: DatagramHandler,
        hooks: ServerHooks = ServerHooks(),
        logger: Logger = Logger(label: "evserver", factory: { _ in SwiftLogNoOpLogHandler() })
    ) throws(ServerError) {
        try configuration.validate()
        guard handler.fits(configuration.mode) else {
            throw ServerError(
                .invalidConfiguration,
                "\(handler.styleName) cannot run in \(configuration.mode) mode: use a DatagramEventHandler with .event, or a DatagramRequestHandler with .sync, .thread or .pool"
            )
        }
        self.configuration = configuration
        self.handler = handler
        self.hooks = hooks
        self.logger = logger

        let bound = try Listener.open(configuration, type: SOCK_DGRAM)
        let loop: EventLoop
        do {
            localAddress = configuration.address.isUnix ? configuration.address : try bound.localAddress()
            loop = try EventLoop()
        } catch {
            Listener.close(bound, configuration.address)
            if let error = error as? SystemError { throw ServerError.cannotListen(on: configuration.address, error) }
            throw error as! ServerError
        }
        let socket = DatagramSocket(socket: bound, address: configuration.address, logger: logger)
        self.socket = socket
        runtime = ServerRuntime(loop: loop, address: localAddress, configuration: configuration) { pool in
            DatagramServerCore(socket: socket, loop: loop, configuration: configuration, pool: pool, logger: logger)
        }
        // The first work the loop runs: every session starts after it.
        let core = runtime.core
        loop.execute { [self] in core.value.attach(to: self) }
        logger.debug(
            "listening",
            metadata: ["evserver.listener": "\(localAddress)", "evserver.mode": "\(configuration.mode)"]
        )
    }

    /// Closes the server if its owner did not (see `StreamServer.deinit`).
    deinit {
        close()
    }

    /// What happened to the datagrams received so far. Any thread.
    public var statistics: DatagramStatistics { socket.counters.snapshot }

    // MARK: Serving

    /// Serves datagrams until `shutdown()` is called (from any thread), then returns. If `shutdown()` was
    /// called before, returns at once.
    public func serveForever() throws(ServerError) {
        try runtime.serveForever()
    }

    /// Starts serving on the server's loop thread and returns at once; `shutdown()` stops it.
    public func start() throws(ServerError) {
        try runtime.start()
    }

    /// Serves one datagram, waiting at most `configuration.timeout` seconds for it (`handleTimeout` is
    /// called when none came). Returns once the handler has run (`.event`, `.sync`) or the datagram is
    /// handed to a worker (`.thread`, `.pool`). A datagram refused by `verifyRequest` counts; an oversize
    /// one does not.
    /// - Returns: `false` when it timed out.
    @discardableResult
    public func handleRequest() throws(ServerError) -> Bool {
        try runtime.handleRequest(timeout: configuration.timeout)
    }

    /// Stops `serveForever()` and waits until it has returned (only requests it on the loop thread).
    /// Queued replies are still sent.
    public func shutdown() {
        runtime.shutdown()
    }

    /// Shuts down gracefully: stops reading at once, lets the handlers finish what was received (the pool
    /// answers what it has queued), sends the queued replies, then closes. Datagram handlers are short, so
    /// `timeout` is not needed to bound them; it is there to match `StreamServer`.
    /// - Returns: `true`.
    @discardableResult
    public func shutdownGracefully(timeout: Double) -> Bool {
        shutdown()
        close()
        return true
    }

    /// Stops serving, waits for the workers (the pool first handles what it has queued), sends what the
    /// kernel takes of the queued replies, closes the socket (removing a Unix socket file) and frees the
    /// loop. Idempotent. From a handler it hands the work to a helper thread and returns at once.
    public func close() {
        runtime.close(
            // The helper holds the server strongly until the close is complete.
            closeElsewhere: { [self] in close() },
            wakeBlockedHandlers: {
                // Async handlers finish on the loop, which must still run for them.
                if !runtime.waitForAsyncTasks(timeout: 1) {
                    logger.warning("closing with async datagram handlers still running")
                }
            },
            finally: {
                socket.close()
                logger.debug("closed", metadata: ["evserver.listener": "\(localAddress)"])
            }
        )
    }

    // MARK: Blocking handlers

    /// Runs a blocking handler's setup / handle / finish for one datagram on the calling thread, and
    /// reports the first error once.
    func serveBlocking(datagram: [UInt8], client: SocketAddress) {
        guard case .blocking(let makeHandler) = handler else { preconditionFailure("serveBlocking with \(handler.styleName)") }
        let request = DatagramRequest(datagram: datagram, clientAddress: client, server: self, socket: socket)
        let handler = makeHandler()
        let failure = runHandlerPhases(
            setup: { try handler.setup(request) },
            handle: { try handler.handle(request) },
            finish: { try handler.finish(request) }
        )
        if let failure { reportHandlerError(failure, client: client) }
    }

    /// Reports a handler's error to the `handleError` hook, or logs it.
    func reportHandlerError(_ error: any Error, client: SocketAddress) {
        hooks.report(error, client: client, logger: logger)
    }
}
