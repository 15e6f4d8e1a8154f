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
    private var connections: [UInt64: StreamConnection] = [:]
    private var nextConnectionID: UInt64 = 1
    /// The pool's queue is full, or `.thread` mode reached `maximumThreads`.
    private var pausedForWorkers = false
    private var pausedForBackoff = false
    private var isClosed = false

    init(listener: Socket, loop: EventLoop, configuration: ServerConfiguration, pool: WorkerPool?, logger: Logger) {
        self.listener = listener
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
        session.begin(number: number, oneRequest: oneRequest, timeout: timeout, hasServiceActions: server?.hooks.serviceActions != nil)
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
        if session.isServing && !pausedForWorkers && !pausedForBackoff && !isClosed {
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
        for _ in 0..<64 {
            guard acceptWatcher.isActive, let server else { return }
            let accepted: (descriptor: CInt, peer: SocketAddress)?
            do {
                accepted = try listener.accept()
            } catch {
                acceptFailed(error)
                return
            }
            guard let (descriptor, peer) = accepted else { return }
            let socket = Socket(descriptor: descriptor)
            if configuration.noDelay && !peer.isUnix {
                try? socket.setOption(level: CInt(IPPROTO_TCP), name: TCP_NODELAY, value: 1, what: "TCP_NODELAY")
            }
            guard server.hooks.verifyRequest(peer) else {
                logger.debug("client rejected by verifyRequest", metadata: ["connection.peer": "\(peer)"])
                socket.close()
                if session.isOneRequest { stopServing(session: nil) }
                continue
            }
            dispatch(socket, peer: peer, server: server)
            if let current = session.current, current.oneRequest, current.connectionID == nil {
                stopServing(session: nil)
            }
            if session.isOneRequest { return }
        }
    }

    private func dispatch(_ socket: Socket, peer: SocketAddress, server: StreamServer) {
        switch server.handler {
        case .event(let makeHandler):
            let id = nextConnectionID
            nextConnectionID += 1
            let connection = StreamConnection(
                socket: socket, clientAddress: peer, id: id, handler: makeHandler(),
                owner: self, server: server, configuration: configuration
            )
            connections[id] = connection
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
            case .event:
                preconditionFailure("a blocking handler in event mode is rejected by StreamServer.init")
            }
        }
    }

    /// `EMFILE`/`ENFILE` leave the connection queued, so accepting again at once would spin: pause for a
    /// second and log once per pause.
    private func acceptFailed(_ error: SystemError) {
        switch error.errno {
        case EMFILE, ENFILE, ENOBUFS, ENOMEM:
            logger.warning(
                "cannot accept: out of descriptors or memory; pausing accept for 1 s",
                metadata: ["error": "\(error)"]
            )
            pausedForBackoff = true
            updateAcceptWatcher()
            acceptBackoffTimer.start()
        default:
            logger.debug("accept failed", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Connections

    func connectionDidClose(_ connection: StreamConnection) {
        connections[connection.id] = nil
        logger.trace("connection closed", metadata: ["connection.id": "\(connection.id)"])
        if let current = session.current, current.oneRequest, current.connectionID == connection.id {
            stopServing(session: current.number)
        }
    }

    func reportHandlerError(_ error: any Error, client: SocketAddress) {
        server?.reportHandlerError(error, client: client)
    }

    // MARK: Closing

    /// Stops every watcher, closes every connection and the listener. The loop may then be destroyed.
    func close() {
        guard !isClosed else { return }
        stopServing(session: nil)
        isClosed = true
        for connection in connections.values {
            connection.finish(error: ConnectionError(.closed, "the server closed"))
        }
        connections.removeAll()
        acceptWatcher.stop()
        acceptBackoffTimer.stop()
        session.stopTimers()
        Listener.close(listener, configuration.address)
    }
}
