import Dispatch
import Logging
import ServiceLifecycle
import Synchronization

/// A stream socket server (TCP over IPv4 or IPv6, or a Unix stream socket) on its own libev loop thread.
///
/// Lifecycle, as socketserver users know it (`SocketServer`): the initialiser binds and listens (port 0
/// reports the real port in `localAddress`); `serveForever()` serves until `shutdown()`; `handleRequest()`
/// serves one client; `close()` closes everything. `shutdown()` may be called from any thread, including
/// from a handler, and never polls.
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
/// `@unchecked Sendable`: the lifecycle is the engine's (thread-safe), loop-side state lives in
/// `StreamAcceptor` (reached only on the loop thread through `LoopBound`), `limits` and `blocking` are
/// thread-safe, and the rest is immutable.
public final class StreamServer: TransportServer, @unchecked Sendable {
    let engine: ServerEngine<StreamAcceptor>
    /// Open connections in every mode, and the connection limits (shared by a group's servers).
    let limits: ConnectionLimits
    /// Connections of blocking handlers: to wake at close, and to reach with `send` and `broadcast`.
    let blocking: BlockingConnections
    /// Finds the member of a group that holds a connection id (`send`, `broadcast`).
    private let router: ConnectionRouter?
    private let accepted = Atomic<Int>(0)
    private let proxyStatistics: Lock<ProxyProtocolStatistics>

    /// Binds and listens.
    ///
    /// - Parameters:
    ///   - configuration: address, execution mode and limits.
    ///   - handler: makes one handler per connection; its style must fit `configuration.mode`.
    ///   - hooks: socketserver's overridable methods, as closures.
    ///   - logger: where the server logs: `trace` and `debug` for each connection and refusal, `error` for
    ///     handler errors (without a `handleError` hook), `notice` and `warning` once per burst when limits
    ///     or resources stop it from serving (every worker busy, out of descriptors or threads).
    public convenience init(
        configuration: ServerConfiguration, handler: StreamHandler, hooks: ServerHooks = ServerHooks(),
        logger: Logger = .evserver
    ) throws(ServerError) {
        try self.init(configuration: configuration, handler: handler, hooks: hooks, logger: logger, backplane: nil)
    }

    /// Binds and listens, as `init(configuration:handler:hooks:logger:)` does, with `backplane`: where
    /// `send(_:to:)` and `broadcast` reach the connections of other processes and hosts (a
    /// `ConnectionBackplane`, e.g. `EvServerRedis`'s); `nil`: this server's own registry.
    public convenience init(
        configuration: ServerConfiguration, handler: StreamHandler, hooks: ServerHooks = ServerHooks(),
        logger: Logger = .evserver, backplane: (any ConnectionBackplane)?
    ) throws(ServerError) {
        // A lone server with a backplane is a group of one: it needs a node number and a router.
        let alone = backplane.map { backplane in
            GroupMembership(
                socket: nil, limits: ConnectionLimits(
                    maximumConnections: configuration.maximumConnections,
                    maximumPerClient: configuration.maximumConnectionsPerClient
                ), router: ConnectionRouter(backplane: backplane), index: 0, sharesSocket: false
            )
        }
        try self.init(configuration: configuration, handler: handler, hooks: hooks, logger: logger, member: alone)
    }

    /// What a member of a `ServerGroup` shares with the others: the socket's duplicate (or `nil` for the
    /// first member, which opens it), the limits, the router and its index there.
    struct GroupMembership {
        let socket: ServerSocket?
        let limits: ConnectionLimits
        let router: ConnectionRouter
        let index: Int
        /// The members wait on one shared socket: each accepts one connection per wake-up, so that
        /// connections spread evenly over the loops (all of them wake for each).
        let sharesSocket: Bool
    }

    init(
        configuration: ServerConfiguration, handler: StreamHandler, hooks: ServerHooks, logger: Logger,
        member: GroupMembership?
    ) throws(ServerError) {
        let limits = member?.limits ?? ConnectionLimits(
            maximumConnections: configuration.maximumConnections,
            maximumPerClient: configuration.maximumConnectionsPerClient
        )
        let router = member?.router
        let index = member?.index ?? 0
        let node = router?.nodeNumber ?? 0
        let firstID = ConnectionIDSpace.firstID(node: node, member: index, blocking: false)
        let proxyStatistics = Lock(ProxyProtocolStatistics())
        engine = try ServerEngine(
            configuration: configuration, kind: .stream, handler: handler.style, shared: member?.socket, hooks: hooks,
            logger: logger
        ) { context in
            StreamAcceptor(
                context: context, handler: handler, limits: limits, firstConnectionID: firstID,
                acceptsPerWakeUp: member?.sharesSocket == true ? 1 : 64, router: router,
                proxyStatistics: proxyStatistics
            )
        }
        self.limits = limits
        self.proxyStatistics = proxyStatistics
        blocking = BlockingConnections(firstID: ConnectionIDSpace.firstID(node: node, member: index, blocking: true))
        self.router = router
        engine.attach(self)
        let transport = engine.transport
        router?.add(self)
        if index == 0 { router?.attachNode(loop: engine.loop) }
        limits.join(self) { [loop = engine.loop] in
            loop.execute { transport.value.connectionSlotFreed() }
        }
    }

    /// Closes the server if its owner did not. The library's own threads hold the server unowned, so
    /// this runs on the owner's thread, and `close()` waits for them before the memory goes.
    deinit {
        close()
    }

    /// Connections accepted and served so far (refused ones not counted): with a group, the share of
    /// this server's loop.
    public var connectionsAccepted: Int { accepted.load(ordering: .relaxed) }
    func countAccepted() { accepted.wrappingAdd(1, ordering: .relaxed) }

    /// With `ServerConfiguration.proxyProtocol`: what became of the connections' headers so far (with a
    /// group, this server's share).
    public var proxyProtocolStatistics: ProxyProtocolStatistics { proxyStatistics.withLock { $0 } }

    /// Connections open now, in every mode (with a group: across its members, which share the count).
    public var connectionsOpen: Int { limits.openCount }

    // MARK: Closing and draining (TransportServer)

    var wakeBlockedHandlers: @Sendable () -> Void {
        { [limits, blocking, member = ObjectIdentifier(self)] in
            limits.leave(member)
            // In .sync mode a handler may hold the loop thread that closing waits for.
            blocking.shutdownAll(.readAndWrite)
        }
    }

    /// Waits for open connections until `deadline`; then ends their input (blocking handlers read end of
    /// input, event handlers hear `connectionInputEnded`) so they send their last replies, and gives them
    /// `lastRepliesGrace` seconds more.
    func drainOpenWork(until deadline: Double) -> Bool {
        if limits.waitUntilNoneOpen(timeout: max(0, deadline - MonotonicClock.now)) { return true }
        engine.context.logger.notice(
            "drain timeout: ending input of the connections still open",
            metadata: ["evserver.listener": "\(localAddress)", "connections": "\(limits.openCount)"]
        )
        let transport = engine.transport
        engine.loop.execute { transport.value.table.endInputOfAll() }
        blocking.shutdownAll(.read)
        _ = limits.waitUntilNoneOpen(timeout: engine.context.lastRepliesGrace)
        return false
    }

    // MARK: Handlers that talk to each other

    /// Sends `bytes` to connection `id`, from any thread or task, after what was sent to it before; ignored
    /// when the connection has closed. In a `ServerGroup`, `id` may be any member's; with a
    /// `ConnectionBackplane`, any node's (another node's is published, and lost if the backplane is away).
    ///
    /// Event and async connections: queued and delivered on their loop, never blocking; a connection that lets
    /// more than 16 write high water marks pile up is closed as too slow. Blocking-mode connections
    /// (`StreamRequest.id`): written by the calling thread, whole, between the handler's own writes, as
    /// socketserver programs do with `sendall` — it waits at most the write (or idle) timeout for a slow client,
    /// then drops the message.
    public func send(_ bytes: [UInt8], to id: ConnectionID) {
        if let router, router.isRemote(id) {
            let message = BackplaneMessage(target: .connection(id), origin: router.nodeNumber, bytes: bytes)
            router.backplane?.publish(message)
            return
        }
        (router?.owner(of: id) ?? self).sendLocally(bytes, to: id, blockingWrites: nil)
    }

    /// Sends `bytes` to every open connection, or those that joined `topic`, except `except`; from any
    /// thread or task, in order; as `send(_:to:)` does for each. In a `ServerGroup`, every member's
    /// connections; with a `ConnectionBackplane`, every node's too (this group's first, directly).
    public func broadcast(_ bytes: [UInt8], topic: String? = nil, except: ConnectionID? = nil) {
        for server in router?.servers ?? [self] {
            server.broadcastLocally(bytes, topic: topic, except: except, blockingWrites: nil)
        }
        guard let router, let backplane = router.backplane else { return }
        backplane.publish(BackplaneMessage(
            target: .broadcast(topic: topic, except: except), origin: router.nodeNumber, bytes: bytes
        ))
    }

    /// `send` to a connection of this server. Blocking connections are written by the calling thread, or on
    /// `blockingWrites` when given (a backplane's delivery must not wait for a slow client).
    func sendLocally(_ bytes: [UInt8], to id: ConnectionID, blockingWrites: DispatchQueue?) {
        guard ConnectionIDSpace.isBlocking(id) else { return onLoop { $0.table.send(bytes, to: id) } }
        guard let blockingWrites else { return blocking.send(bytes, to: id) }
        blockingWrites.async { [blocking] in blocking.send(bytes, to: id) }
    }

    /// `broadcast` to this server's connections; blocking ones as `sendLocally` writes them.
    func broadcastLocally(_ bytes: [UInt8], topic: String?, except: ConnectionID?, blockingWrites: DispatchQueue?) {
        onLoop { $0.table.broadcast(bytes, topic: topic, except: except) }
        guard let blockingWrites else { return blocking.broadcast(bytes, topic: topic, except: except) }
        blockingWrites.async { [blocking] in blocking.broadcast(bytes, topic: topic, except: except) }
    }

    /// Runs `work` with the acceptor on the loop thread.
    private func onLoop(_ work: @escaping @Sendable (StreamAcceptor) -> Void) {
        let transport = engine.transport
        engine.loop.execute { work(transport.value) }
    }
}

/// A swift-service-lifecycle `Service`: `run()` comes from the engine (see `SocketServer`).
extension StreamServer: Service {}
