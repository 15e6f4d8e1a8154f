import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The loop side of a `StreamServer` (its `ServerTransport`): accepts connections while the intake lets it,
/// applies the limits, the address policy and `verifyRequest`, and hands each connection to its execution
/// mode — an event-mode `StreamConnection` in the `ConnectionTable`, or a blocking handler on the workers.
///
/// Confined to the server's loop thread (the state read per accept is `@exclusivity(unchecked)`: 3 % less).
final class StreamAcceptor: ServerTransport {
    let intake: Intake
    /// The open event and async connections.
    let table: ConnectionTable
    private let context: ServerContext
    private let handler: StreamHandler
    private let limits: ConnectionLimits
    /// The group's router: its backplane node lets go of this loop when it closes.
    private let router: ConnectionRouter?
    /// Connections taken per wake-up: a bound, so a flood cannot starve the established connections (64),
    /// or 1 when the loops of a group share the socket, so each takes its turn.
    private let acceptsPerWakeUp: Int
    private let policy: AddressPolicy
    /// The event-mode handler factory, taken out of `handler` once (the switch copied the enum, a retain
    /// and release per connection).
    private let makeEventHandler: (@Sendable () -> any StreamEventHandler)?
    /// The listening socket, reached without a retain per accept (~40 instructions, two accepts a connection):
    /// the context holds it as long as the acceptor lives.
    private let listener: Unmanaged<Socket>
    @exclusivity(unchecked) private var rateLimit: TokenBucket?
    private var rateTimer: TimerWatcher!
    @exclusivity(unchecked) private var clientRateLimit: ClientRateLimit?
    /// With `proxyProtocol`: reads each connection's header before it is admitted.
    @exclusivity(unchecked) private var proxyHeaders: ProxyHeaderReader?
    /// Accepting or starting threads is failing for want of resources: since when, and how many pauses.
    @exclusivity(unchecked) private var shortage: (since: Double, pauses: Int)?
    private var workersBusyLog = LogThrottle()
    /// `close()` ran: a connection handed over late is closed, not opened.
    private var isClosed = false
    /// Set by `attach`, the first work the loop runs. (Unmanaged: see `ConnectionTable.server`.)
    @exclusivity(unchecked) private var server: Unmanaged<StreamServer>!

    init(
        context: ServerContext, handler: StreamHandler, limits: ConnectionLimits, firstConnectionID: UInt64,
        acceptsPerWakeUp: Int, router: ConnectionRouter?, proxyStatistics: Lock<ProxyProtocolStatistics>
    ) {
        self.acceptsPerWakeUp = acceptsPerWakeUp
        self.router = router
        self.context = context
        self.handler = handler
        self.limits = limits
        intake = Intake(context: context)
        table = ConnectionTable(context: context, limits: limits, intake: intake, firstID: firstConnectionID)
        policy = context.configuration.addressPolicy
        if case .event(let make) = handler { makeEventHandler = make } else { makeEventHandler = nil }
        listener = Unmanaged.passUnretained(context.socket.socket)
        rateLimit = context.configuration.maximumConnectionRate.map { TokenBucket(rate: $0) }
        clientRateLimit = context.configuration.maximumConnectionRatePerClient.map { ClientRateLimit(rate: $0) }
        rateTimer = TimerWatcher(loop: context.loop, after: 1) { [unowned self] in intake.resume(.connectionRate) }
        intake.transport = self
        proxyHeaders = context.configuration.proxyProtocol.map { policy in
            ProxyHeaderReader(context: context, policy: policy, limits: limits, statistics: proxyStatistics) {
                [unowned self] socket, client in admit(socket.takeDescriptor(), peer: client, reserved: true)
            }
        }
    }

    /// Links the acceptor to its server: the handlers' `server`, the factories, blocking handlers' home.
    func attach(to server: Unmanaged<StreamServer>) {
        self.server = server
        table.server = server
    }

    // MARK: Accepting (ServerTransport)

    func takeWork() {
        acceptPending(upTo: acceptsPerWakeUp)
    }

    /// Graceful shutdown: takes the connections the kernel already completed (their clients may have sent
    /// requests), then closes the listener so no more come. Open connections go on.
    func takeWaitingWork() {
        guard context.socket.isOpen else { return }
        acceptPending(upTo: Int.max, draining: true)
        context.socket.close()
    }

    /// Accepts up to `count` waiting connections. Stops early when the intake pauses or nothing waits.
    private func acceptPending(upTo count: Int, draining: Bool = false) {
        for _ in 0..<count {
            guard draining || intake.isTaking else { return }
            // Checked before each accept: in a group another loop may have reached the shared limit.
            if !draining, limits.isFull {
                intake.pause(.connectionLimit)
                return
            }
            if !draining, rateLimit != nil, !rateLimit!.take() {
                pauseForRate()
                return
            }
            let accepted: (descriptor: CInt, peer: SocketAddress)?
            let result = listener._withUnsafeGuaranteedRef { socket in
                Result { () throws(SystemError) in try socket.accept() }
            }
            switch result {
            case .success(let value): accepted = value
            case .failure(let error):
                acceptFailed(error)
                return
            }
            guard let (descriptor, peer) = accepted else {
                rateLimit?.refund()
                return
            }
            if shortage != nil { endShortage() }
            if let proxyHeaders {
                proxyHeaders.begin(Socket(descriptor: descriptor), peer: peer)
                if limits.isFull { intake.pause(.connectionLimit) }
            } else {
                admit(descriptor, peer: peer)
            }
        }
    }

    /// Admits the connection `descriptor` (owned) from `peer`, or refuses it. `reserved`: it already holds a
    /// slot of `maximumConnections` (it waited for its PROXY header).
    private func admit(_ descriptor: CInt, peer: consuming SocketAddress, reserved: Bool = false) {
        if let (why, refusal) = refusal(of: peer, reserved: reserved) {
            context.logger.debug("client refused: \(why)", metadata: ["connection.peer": "\(peer)"])
            _ = Glibc.close(descriptor)
            if reserved { limits.releaseReservation() }
            context.connectionRefused(peer, refusal)
            intake.requestTaken()
            return
        }
        configure(SocketDescriptor(descriptor), peer: peer)
        server._withUnsafeGuaranteedRef { $0.countAccepted() }
        context.connectionOpened()
        dispatch(descriptor, peer: peer)
        if limits.isFull { intake.pause(.connectionLimit) }
    }

    /// Why `peer` is not served, or `nil` when it is (and is then counted as open).
    private func refusal(of peer: SocketAddress, reserved: Bool) -> (String, ServerContext.Refusal)? {
        guard policy.admits(peer) else { return ("address not allowed", .denied) }
        guard context.hooks.verifyRequest(peer) else { return ("verifyRequest refused it", .verify) }
        // The host's text only when a per-client rate needs it: formatting it costs more than the rest of accept.
        if clientRateLimit != nil, let host = peer.host, clientRateLimit?.admit(host) == false {
            return ("too many new connections per second from this address", .perClientRate)
        }
        guard reserved ? limits.admitReserved(peer) : limits.admit(peer) else {
            return ("too many connections from this address", .perClientLimit)
        }
        return nil
    }

    private func configure(_ socket: SocketDescriptor, peer: SocketAddress) {
        let configuration = context.configuration
        if configuration.noDelay && !peer.isUnix {
            try? socket.setOption(level: CInt(IPPROTO_TCP), name: TCP_NODELAY, value: 1, what: "TCP_NODELAY")
        }
        if let size = configuration.sendBufferSize {
            try? socket.setOption(level: SOL_SOCKET, name: SO_SNDBUF, value: CInt(clamping: size), what: "SO_SNDBUF")
        }
        context.hooks.configureConnection?(socket.descriptor, peer)
    }

    private func pauseForRate() {
        intake.pause(.connectionRate)
        rateTimer.set(after: rateLimit!.secondsUntilNextToken())
        rateTimer.start()
    }

    /// A connection of the server closed while it was at `maximumConnections`: accept again.
    func connectionSlotFreed() {
        if !limits.isFull { intake.resume(.connectionLimit) }
    }

    // MARK: Dispatch

    private func dispatch(_ descriptor: CInt, peer: consuming SocketAddress) {
        if let makeEventHandler { return open(descriptor, peer: peer, handler: makeEventHandler()) }
        switch handler {
        case .event:
            preconditionFailure("event handlers are made by makeEventHandler")
        case .async(let makeHandler):
            open(descriptor, peer: peer, handler: AsyncHandlerBridge(makeHandler: makeHandler, context: context))
        case .blocking(let makeHandler):
            let socket = UncheckedSocket(Socket(descriptor: descriptor))
            // Unowned: close() waits for the workers before the server's memory goes.
            let job: @Sendable () -> Void = { [unowned(unsafe) server = server.takeUnretainedValue(), socket, peer] in
                server.serveBlocking(socket.socket, peer: peer, handler: makeHandler())
            }
            runBlocking(job, peer: peer)
            intake.requestTaken()
        }
    }

    /// Opens an event-mode connection; a `handleRequest()` session lasts until it closes.
    private func open(_ descriptor: CInt, peer: consuming SocketAddress, handler: consuming any StreamEventHandler) {
        let connection = table.add(descriptor, peer: peer, handler: handler)
        intake.requestTaken(heldBy: connection.id)
        connection.open()
    }

    private func runBlocking(_ job: @escaping @Sendable () -> Void, peer: SocketAddress) {
        switch context.workers.run(job, whenFull: .queue) {
        case .ran, .started(hasRoom: true): return
        case .started(hasRoom: false):
            intake.pause(.workersBusy)
            if let count = workersBusyLog.occurrence(interval: 10) {
                context.logger.warning(
                    "\(context.configuration.workersBusyMessage)",
                    metadata: ["times": "\(count)", "evserver.listener": "\(context.localAddress)"]
                )
            }
        case .droppedFull:
            preconditionFailure("a stream job is queued, never dropped")
        case .failed(let error):
            limits.releaseAndNotify(peer)
            context.metrics.refusedNoThread.increment()
            context.connectionClosed(ConnectionTally().summary(
                id: 0, peer: peer, local: context.localAddress, otherwise: .error
            ))
            startShortage(error, what: "cannot start a thread for a connection (refused it)")
        }
    }

    /// A blocking handler's connection handed to the loop (`StreamRequest.handOff(to:)`): opens it as an
    /// event-mode connection, then gives its handler the input read before.
    func adopt(_ handedOff: HandedOffConnection) {
        guard !isClosed else {
            handedOff.socket.close()
            limits.releaseAndNotify(handedOff.peer)
            context.connectionClosed(handedOff.tally.summary(
                id: 0, peer: handedOff.peer, local: context.localAddress, otherwise: .serverClosed
            ))
            return
        }
        let (socket, handler) = (handedOff.socket.takeDescriptor(), handedOff.successor.handler)
        let connection = table.add(socket, peer: handedOff.peer, handler: handler, tally: handedOff.tally)
        connection.open()
        connection.receivedBefore(handedOff.unread, inputEnded: handedOff.inputEnded)
    }

    // MARK: Shortage of resources

    /// `EMFILE`/`ENFILE` leave the connection queued, so accepting again at once would spin: pause for a
    /// second, retry, and log once per burst (a warning when it starts, a notice when accepting resumes).
    private func acceptFailed(_ error: SystemError) {
        switch error.errno {
        case EMFILE, ENFILE, ENOBUFS, ENOMEM:
            startShortage(error, what: "cannot accept: out of descriptors or memory")
        default:
            context.logger.debug("accept failed", metadata: ["error": "\(error)"])
        }
    }

    private func startShortage(_ error: SystemError, what: String) {
        if shortage == nil {
            context.logger.warning(
                "\(what); retrying every second until resources free up",
                metadata: ["error": "\(error)", "evserver.listener": "\(context.localAddress)"]
            )
            shortage = (MonotonicClock.now, 0)
        }
        shortage?.pauses += 1
        intake.pauseForShortage()
    }

    private func endShortage() {
        guard let burst = shortage else { return }
        context.logger.notice(
            "accepting again",
            metadata: ["pauses": "\(burst.pauses)", "seconds": "\(Int(MonotonicClock.now - burst.since))"]
        )
        shortage = nil
    }

    // MARK: Closing (ServerTransport)

    func closeConnections() {
        proxyHeaders?.closeAll()
        table.closeAll()
    }

    func close() {
        isClosed = true
        intake.stop()
        closeConnections()
        rateTimer.stop()
        router?.detachNode(loop: context.loop)
    }
}
