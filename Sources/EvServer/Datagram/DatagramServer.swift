import Logging
import ServiceLifecycle

/// A datagram socket server (UDP over IPv4 or IPv6, or a Unix datagram socket) on its own libev loop
/// thread, with the stream servers' lifecycle (`SocketServer`), hooks and execution modes.
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
/// Graceful shutdown stops reading at once, lets the handlers finish what was received (the pool answers
/// what it has queued), sends the queued replies, then closes: `timeout` is not needed to bound datagram
/// handlers, and is there to match `StreamServer`.
///
/// `@unchecked Sendable`: the lifecycle is the engine's (thread-safe), loop-side state lives in
/// `DatagramReceiver` (reached only on the loop thread through `LoopBound`), the socket is shared as
/// `DatagramSocket` explains, and the rest is immutable.
public final class DatagramServer: TransportServer, @unchecked Sendable {
    let engine: ServerEngine<DatagramReceiver>
    /// What happened to each datagram, counted by the loop and the workers.
    private let counters: DatagramCounters

    /// Binds the socket.
    ///
    /// - Parameters:
    ///   - configuration: address, execution mode, `maximumDatagramSize`.
    ///   - handler: the handler style must fit `configuration.mode`.
    ///   - hooks: `verifyRequest` runs for each datagram (a refused one is dropped and counted).
    ///   - logger: where the server logs.
    public convenience init(
        configuration: ServerConfiguration, handler: DatagramHandler, hooks: ServerHooks = ServerHooks(),
        logger: Logger = .evserver
    ) throws(ServerError) {
        try self.init(configuration: configuration, handler: handler, hooks: hooks, logger: logger, sharing: nil)
    }

    /// `sharing`: a group member's duplicate of the first member's socket, or `nil` to open one.
    init(
        configuration: ServerConfiguration, handler: DatagramHandler, hooks: ServerHooks, logger: Logger,
        sharing shared: ServerSocket?
    ) throws(ServerError) {
        let counters = DatagramCounters()
        engine = try ServerEngine(
            configuration: configuration, kind: .datagram, handler: handler.style, shared: shared, hooks: hooks,
            logger: logger
        ) { context in
            DatagramReceiver(
                context: context, handler: handler,
                socket: DatagramSocket(context.socket, counters: counters, logger: logger)
            )
        }
        self.counters = counters
        engine.attach(self)
    }

    /// Closes the server if its owner did not (see `StreamServer.deinit`).
    deinit {
        close()
    }

    /// What happened to the datagrams received so far. Any thread.
    public var statistics: DatagramStatistics { counters.snapshot }

    // MARK: Closing and draining (TransportServer)

    /// Datagram handlers do not block on clients: nothing to wake.
    var wakeBlockedHandlers: @Sendable () -> Void { {} }

    /// Nothing stays open between datagrams: the workers finish their queue as the server closes.
    func drainOpenWork(until deadline: Double) -> Bool { true }

    // MARK: Blocking handlers

    /// Runs a blocking handler's phases for one datagram on the calling thread, and reports the first error
    /// once.
    func serveBlocking(
        datagram: [UInt8], client: SocketAddress, socket: DatagramSocket, handler: any DatagramRequestHandler
    ) {
        let request = DatagramRequest(datagram: datagram, clientAddress: client, server: self, socket: socket)
        if let failure = handler.runPhases(on: request) {
            engine.context.reportHandlerError(failure, client: client)
        }
    }
}

/// A swift-service-lifecycle `Service`: `run()` comes from the engine (see `SocketServer`).
extension DatagramServer: Service {}
