import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The loop-side half of a `StreamServer`: the accept watcher, the timers, the table of event-mode
/// connections, and dispatch to the execution mode.
///
/// Confined to the server's loop thread (the facade reaches it only through `LoopBound` inside
/// `loop.execute`).
final class StreamServerCore: ServerCore {
    let loop: EventLoop
    let configuration: ServerConfiguration
    /// Shared by every connection's reads: each read's bytes are handed to the handler before the next read.
    let readBuffer: UnsafeMutableRawBufferPointer
    /// Set once, right after the facade is initialised.
    weak var server: StreamServer?

    private let listener: Socket
    private let logger: Logger
    private let pool: WorkerPool?
    private var acceptWatcher: IOWatcher!
    private var acceptBackoffTimer: TimerWatcher!
    private var session: ServingSession!
    /// Open event and async connections, and their topics.
    var registry: ConnectionRegistry
    /// Ids are unique within a server group: each member starts its own range.
    private var nextConnectionID: UInt64
    /// The pool's queue is full, or `.thread` mode reached `maximumThreads`.
    private var pausedForWorkers = false
    private var pausedForBackoff = false
    /// At `maximumConnections`.
    private var pausedForConnectionLimit = false
    /// Over `maximumConnectionRate`, until `rateTimer` fires.
    private var pausedForRate = false
    private var rateLimit: TokenBucket?
    private var rateTimer: TimerWatcher!
    private var clientRateLimit: ClientRateLimit?
    /// Accept is failing for want of descriptors: since when, and how many pauses so far.
    private var descriptorShortage: (since: Double, pauses: Int)?
    private let admission: ConnectionAdmission
    private let policy: AddressPolicy
    private var isClosed = false

    init(
        listener: Socket, loop: EventLoop, configuration: ServerConfiguration, pool: WorkerPool?,
        admission: ConnectionAdmission, firstConnectionID: UInt64, logger: Logger
    ) {
        nextConnectionID = firstConnectionID
        self.listener = listener
        self.admission = admission
        registry = ConnectionRegistry(slowConsumerLimit: 16 * configuration.writeBufferHighWaterMark)
        policy = configuration.addressPolicy
        rateLimit = configuration.maximumConnectionRate.map { TokenBucket(rate: $0) }
        clientRateLimit = configuration.maximumConnectionRatePerClient.map { ClientRateLimit(rate: $0) }
        self.loop = loop
        self.configuration = configuration
        self.pool = pool
        self.logger = logger
        readBuffer = .allocate(byteCount: 64 * 1024, alignment: 16)
        acceptWatcher = IOWatcher(loop: loop, descriptor: listener.descriptor, events: .read) { [unowned self] _ in
            self.acceptReady()
        }
        acceptBackoffTimer = TimerWatcher(loop: loop, after: 1) { [unowned self] in
            self.pausedForBackoff = false
            self.updateAcceptWatcher()
        }
        rateTimer = TimerWatcher(loop: loop, after: 1) { [unowned self] in
            self.pausedForRate = false
            self.updateAcceptWatcher()
        }
        session = ServingSession(
            loop: loop, serviceActionsInterval: configuration.serviceActionsInterval,
            onTimeout: { [unowned self] in
                self.server?.hooks.handleTimeout()
                self.stopServing(session: nil, timedOut: true)
            },
            serviceActions: { [unowned self] in self.server?.hooks.serviceActions?() }
        )
    }

    deinit {
        readBuffer.deallocate()
    }

    // MARK: Sessions

    func startServing(session number: Int, oneRequest: Bool, timeout: Double?) {
        guard !isClosed else { return }
        guard session.begin(number: number, oneRequest: oneRequest, timeout: timeout, hasServiceActions: server?.hooks.serviceActions != nil) else {
            server?.runtime.sessionEnded(timedOut: false)
            return
        }
        updateAcceptWatcher()
    }

    func stopServing(session number: Int?) {
        stopServing(session: number, timedOut: false)
    }

    /// Ends the session `number` (or whichever runs, when `nil`). `timedOut` reaches `handleRequest`.
    private func stopServing(session number: Int?, timedOut: Bool) {
        guard session.end(number: number) else { return }
        updateAcceptWatcher()
        server?.runtime.sessionEnded(timedOut: timedOut)
    }

    // MARK: Accepting

    private func updateAcceptWatcher() {
        if session.isServing && !pausedForWorkers && !pausedForBackoff && !pausedForConnectionLimit && !pausedForRate
            && !isClosed && listener.isOpen
        {
            acceptWatcher.start()
        } else {
            acceptWatcher.stop()
        }
    }

    func workersHaveRoom() {
        pausedForWorkers = false
        updateAcceptWatcher()
    }

    private func acceptReady() {
        // Bounded, so a flood of connections cannot starve the established ones.
        acceptPending(upTo: 64)
    }

    /// Accepts up to `count` waiting connections, applying the limits, the address policy and
    /// `verifyRequest`. Stops early when accepting pauses or nothing waits.
    private func acceptPending(upTo count: Int, draining: Bool = false) {
        for _ in 0..<count {
            guard draining || acceptWatcher.isActive, let server else { return }
            // Checked before each accept: in a group another loop may have reached the shared limit.
            if !draining, admission.isFull {
                pausedForConnectionLimit = true
                updateAcceptWatcher()
                return
            }
            if !draining, rateLimit != nil, !rateLimit!.take() {
                pauseForRate()
                return
            }
            let accepted: (descriptor: CInt, peer: SocketAddress)?
            do {
                accepted = try listener.accept()
            } catch {
                acceptFailed(error)
                return
            }
            guard let (descriptor, peer) = accepted else {
                rateLimit?.refund()
                return
            }
            if let burst = descriptorShortage {
                logger.notice("accepting again", metadata: ["pauses": "\(burst.pauses)", "seconds": "\(Int(MonotonicClock.now - burst.since))"])
                descriptorShortage = nil
            }
            let socket = Socket(descriptor: descriptor)
            if configuration.noDelay && !peer.isUnix {
                try? socket.setOption(level: CInt(IPPROTO_TCP), name: TCP_NODELAY, value: 1, what: "TCP_NODELAY")
            }
            guard let refusal = refusal(of: peer, server: server) else {
                server.countAccepted()
                dispatch(socket, peer: peer, server: server)
                if admission.isFull {
                    pausedForConnectionLimit = true
                    updateAcceptWatcher()
                }
                if let current = session.current, current.oneRequest, current.connectionID == nil {
                    stopServing(session: nil)
                }
                if session.isOneRequest { return }
                continue
            }
            logger.debug("client refused: \(refusal)", metadata: ["connection.peer": "\(peer)"])
            socket.close()
            if session.isOneRequest { stopServing(session: nil) }
        }
    }

    /// Why `peer` is not served, or `nil` when it is (and is then counted as open).
    private func refusal(of peer: SocketAddress, server: StreamServer) -> String? {
        guard policy.admits(peer) else { return "address not allowed" }
        guard server.hooks.verifyRequest(peer) else { return "verifyRequest refused it" }
        if let host = peer.host, clientRateLimit?.admit(host) == false {
            return "too many new connections per second from this address"
        }
        guard admission.admit(peer) else { return "too many connections from this address" }
        return nil
    }

    private func pauseForRate() {
        pausedForRate = true
        updateAcceptWatcher()
        rateTimer.set(after: rateLimit!.secondsUntilNextToken())
        rateTimer.start()
    }

    /// A connection of the server closed while it was at `maximumConnections`: accept again.
    func connectionSlotFreed() {
        pausedForConnectionLimit = admission.isFull
        updateAcceptWatcher()
    }

    /// Graceful shutdown, first step: takes the connections the kernel already completed (their clients
    /// may have sent requests), then closes the listener so no more come. Open connections go on.
    func stopAccepting() {
        guard !isClosed, listener.isOpen else { return }
        stopServing(session: nil)
        acceptPending(upTo: Int.max, draining: true)
        acceptWatcher.stop()
        Listener.close(listener, configuration.address)
    }

    /// Graceful shutdown, at the deadline: input ends for every event-mode connection, whose handler then
    /// finishes its replies (by default the connection closes once they are sent).
    func endInputOfAll() {
        for connection in registry.members(of: nil) { connection.endInput() }
    }

    private func dispatch(_ socket: Socket, peer: SocketAddress, server: StreamServer) {
        switch server.handler {
        case .event, .async:
            let handler: any StreamEventHandler
            switch server.handler {
            case .event(let makeHandler): handler = makeHandler()
            case .async(let makeHandler):
                handler = AsyncHandlerBridge(makeHandler: makeHandler, executor: server.runtime.executor, configuration: configuration)
            case .blocking: preconditionFailure("handled below")
            }
            let id = nextConnectionID
            nextConnectionID += 1
            let connection = StreamConnection(
                socket: socket, clientAddress: peer, id: id, handler: handler,
                owner: self, server: server, configuration: configuration
            )
            registry.add(connection)
            if session.isOneRequest { session.current?.connectionID = id }
            logger.trace("connection opened", metadata: ["connection.id": "\(id)", "connection.peer": "\(peer)"])
            connection.open()
        case .blocking:
            let descriptor = socket.takeDescriptor()
            switch configuration.mode {
            case .sync:
                server.serveBlocking(descriptor: descriptor, peer: peer)
            case .thread, .pool:
                // Unowned: close() waits for the workers before the server's memory goes.
                let job: @Sendable () -> Void = { [unowned(unsafe) server] in
                    server.serveBlocking(descriptor: descriptor, peer: peer)
                }
                let hasRoom = pool?.submit(job) ?? server.runtime.startWorkerThread(job)
                if !hasRoom {
                    pausedForWorkers = true
                    updateAcceptWatcher()
                }
            case .event, .async:
                preconditionFailure("a blocking handler in event or async mode is rejected by StreamServer.init")
            }
        }
    }

    /// `EMFILE`/`ENFILE` leave the connection queued, so accepting again at once would spin: pause for a
    /// second, retry, and log once per burst (a warning when it starts, a notice when accepting resumes).
    private func acceptFailed(_ error: SystemError) {
        switch error.errno {
        case EMFILE, ENFILE, ENOBUFS, ENOMEM:
            if descriptorShortage == nil {
                logger.warning(
                    "cannot accept: out of descriptors or memory; retrying every second until some free up",
                    metadata: ["error": "\(error)"]
                )
                descriptorShortage = (MonotonicClock.now, 0)
            }
            descriptorShortage?.pauses += 1
            pausedForBackoff = true
            updateAcceptWatcher()
            acceptBackoffTimer.start()
        default:
            logger.debug("accept failed", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Connections

    func connectionDidClose(_ connection: StreamConnection) {
        registry.remove(connection.id)
        admission.releaseAndNotify(connection.clientAddress)
        logger.trace("connection closed", metadata: ["connection.id": "\(connection.id)"])
        if let current = session.current, current.oneRequest, current.connectionID == connection.id {
            stopServing(session: current.number)
        }
    }

    // MARK: Registry (loop thread; StreamServer's send/broadcast hop here)

    func send(_ bytes: [UInt8], to id: ConnectionID) {
        guard let connection = registry.connections[id] else { return }
        registry.deliver(bytes, to: connection)
    }

    func broadcast(_ bytes: [UInt8], topic: String?, except: ConnectionID?) {
        for connection in registry.members(of: topic) where connection.id != except {
            registry.deliver(bytes, to: connection)
        }
    }

    func reportHandlerError(_ error: any Error, client: SocketAddress) {
        server?.reportHandlerError(error, client: client)
    }

    // MARK: Closing

    /// Closes every connection now (async mode's close, before the loop stops).
    func closeConnections() {
        for connection in registry.removeAll() {
            connection.finish(error: ConnectionError(.closed, "the server closed"))
        }
    }

    /// Stops every watcher, closes every connection and the listener. The loop may then be destroyed.
    func close() {
        guard !isClosed else { return }
        stopServing(session: nil)
        isClosed = true
        closeConnections()
        acceptWatcher.stop()
        acceptBackoffTimer.stop()
        rateTimer.stop()
        session.stopTimers()
        Listener.close(listener, configuration.address)
    }
}
