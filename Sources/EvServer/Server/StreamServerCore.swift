import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The loop-side half of a `StreamServer`: the accept watcher, the timers, the table of event-mode
/// connections, and dispatch to the execution mode.
///
/// Confined to the server's loop thread (the facade reaches it only through `LoopBound` inside
/// `loop.execute`).
final class StreamServerCore {
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
    private var requestTimer: TimerWatcher!
    private var serviceActionsTimer: TimerWatcher!
    private var connections: [UInt64: StreamConnection] = [:]
    private var nextConnectionID: UInt64 = 1

    /// The serving session in progress, if any (`serveForever` or `handleRequest`).
    private struct Session {
        let number: Int
        let oneRequest: Bool
        /// handleRequest in event mode: the connection whose close ends the session.
        var connectionID: UInt64?
    }
    private var session: Session?
    private var pausedForPool = false
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
        requestTimer = TimerWatcher(loop: loop, after: 0) { [unowned self] in
            self.requestTimedOut()
        }
        let interval = configuration.serviceActionsInterval
        serviceActionsTimer = TimerWatcher(loop: loop, after: interval, repeat: interval) { [unowned self] in
            self.server?.hooks.serviceActions?()
        }
    }

    deinit {
        readBuffer.deallocate()
    }

    // MARK: Sessions

    func startServing(session number: Int, oneRequest: Bool, timeout: Double?) {
        guard !isClosed else { return }
        session = Session(number: number, oneRequest: oneRequest)
        if oneRequest, let timeout {
            requestTimer.set(after: timeout)
            requestTimer.start()
        }
        if server?.hooks.serviceActions != nil { serviceActionsTimer.start() }
        updateAcceptWatcher()
    }

    /// Ends the session `number` (or whichever runs, when `nil`). `timedOut` reaches `handleRequest`.
    func stopServing(session number: Int?, timedOut: Bool = false) {
        guard let current = session, number == nil || number == current.number else { return }
        session = nil
        requestTimer.stop()
        serviceActionsTimer.stop()
        updateAcceptWatcher()
        server?.sessionEnded(timedOut: timedOut)
    }

    private func requestTimedOut() {
        guard session != nil else { return }
        server?.hooks.handleTimeout()
        stopServing(session: nil, timedOut: true)
    }

    // MARK: Accepting

    private func updateAcceptWatcher() {
        if session != nil && !pausedForPool && !pausedForBackoff && !isClosed {
            acceptWatcher.start()
        } else {
            acceptWatcher.stop()
        }
    }

    /// Called (on the loop) when the pool has room again.
    func poolHasRoom() {
        pausedForPool = false
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
                if session?.oneRequest == true { stopServing(session: nil) }
                continue
            }
            dispatch(socket, peer: peer, server: server)
            if let current = session, current.oneRequest, current.connectionID == nil {
                stopServing(session: nil)
            }
            if session?.oneRequest == true { return }
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
            if session?.oneRequest == true { session?.connectionID = id }
            logger.trace("connection opened", metadata: ["connection.id": "\(id)", "connection.peer": "\(peer)"])
            connection.open()
        case .blocking:
            let descriptor = socket.takeDescriptor()
            switch configuration.mode {
            case .sync:
                server.serveBlocking(descriptor: descriptor, peer: peer)
            case .thread:
                server.startWorkerThread(descriptor: descriptor, peer: peer)
            case .pool:
                // Unowned: close() joins the pool before the server's memory goes.
                let hasRoom = pool!.submit { [unowned(unsafe) server] in
                    server.serveBlocking(descriptor: descriptor, peer: peer)
                }
                if !hasRoom {
                    pausedForPool = true
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
        if let current = session, current.oneRequest, current.connectionID == connection.id {
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
        if session != nil { stopServing(session: nil) }
        isClosed = true
        for connection in connections.values {
            connection.finish(error: ConnectionError(.closed, "the server closed"))
        }
        connections.removeAll()
        acceptWatcher.stop()
        acceptBackoffTimer.stop()
        requestTimer.stop()
        serviceActionsTimer.stop()
        listener.close()
        if let path = configuration.address.unixPath { unlink(path) }
    }
}
