import Logging

/// The open event-mode and async connections of one server, on its loop: gives each its id, owns the read
/// buffer they share, delivers what `send` and `broadcast` queue, and is where a connection reports its
/// close and its handler's errors (`ConnectionOwner`).
///
/// Confined to the server's loop thread.
final class ConnectionTable: ConnectionOwner {
    /// Set by the acceptor's `attach`: the `server` of every connection. Unmanaged, used without a retain:
    /// the server outlives its table, and the group's router holds it weakly, which sends each retain and
    /// release of it down the runtime's slow path (~100 instructions a pair).
    @exclusivity(unchecked) var server: Unmanaged<StreamServer>!
    private let context: ServerContext
    private let limits: ConnectionLimits
    /// Told when a connection closes (a `handleRequest()` session may wait for it). Unmanaged, used without a
    /// retain: the acceptor owns both and the intake goes with it (a checked reference cost its slow path per
    /// close, an unowned(unsafe) one a retain and release).
    private let intake: Unmanaged<Intake>
    /// The context's loop, read per connection (through the context it cost a retain and release).
    private let loop: EventLoop
    /// (Unchecked: loop-confined, and only short accesses; the runtime checks were 3 % of a connection's cost.)
    @exclusivity(unchecked) private var registry: ConnectionRegistry
    /// Ids are unique within a server group: each member starts its own range.
    @exclusivity(unchecked) private var nextID: ConnectionID
    /// Shared by every connection's reads: each read's bytes are handed to the handler before the next read.
    private let readBuffer: UnsafeMutableRawBufferPointer
    /// The connections' read watchers' memory.
    private let watchers = WatcherSlab()
    /// The logger, when it logs at trace level: the per-connection lines then (copying the `Logger` to ask
    /// cost ~120 instructions a connection at other levels).
    private let traceLogger: Logger?
    /// Whether a closed connection's summary is wanted: a `connectionClosed` hook or a metrics backend.
    private let summarizes: Bool
    private let settings: ConnectionSettings

    init(context: ServerContext, limits: ConnectionLimits, intake: Intake, firstID: ConnectionID) {
        self.context = context
        self.limits = limits
        self.intake = Unmanaged.passUnretained(intake)
        loop = context.loop
        nextID = firstID
        registry = ConnectionRegistry(slowConsumerLimit: 16 * context.configuration.writeBufferHighWaterMark)
        readBuffer = .allocate(byteCount: 64 * 1024, alignment: 16)
        traceLogger = context.logger.logLevel <= .trace ? context.logger : nil
        summarizes = context.hooks.connectionClosed != nil || context.metrics.isRecording
        settings = ConnectionSettings(context.configuration)
    }

    deinit {
        readBuffer.deallocate()
    }

    /// Makes and registers a connection for an accepted socket; the caller opens it. (`peer` and `handler`
    /// are consumed: the connection keeps them without a copy.)
    func add(
        _ descriptor: CInt, peer: consuming SocketAddress, handler: consuming any StreamEventHandler,
        tally: ConnectionTally? = nil
    ) -> StreamConnection {
        // The clock only when a summary will use it (`summarizes` is fixed per server).
        let tally = tally ?? ConnectionTally(opened: summarizes ? MonotonicClock.now : 0)
        let id = nextID
        nextID = ConnectionIDSpace.next(after: id)
        let connection = StreamConnection(
            descriptor: descriptor, clientAddress: peer, id: id, handler: handler,
            owner: Unmanaged.passUnretained(self), server: server, loop: loop, readBuffer: readBuffer,
            readIO: watchers.take(), settings: settings, tally: tally
        )
        registry.add(connection)
        traceLogger?.trace(
            "connection opened", metadata: ["connection.id": "\(id)", "connection.peer": "\(connection.clientAddress)"]
        )
        return connection
    }

    // MARK: ConnectionOwner

    func connectionDidClose(_ connection: StreamConnection, tally: ConnectionTally) {
        forget(connection)
        limits.releaseAndNotify(connection.clientAddress)
        if summarizes { context.connectionClosed(summary(of: connection, tally)) }
        traceLogger?.trace("connection closed", metadata: ["connection.id": "\(connection.id)"])
        intake._withUnsafeGuaranteedRef { $0.connectionClosed(connection.id) }
    }

    func connectionDidDetach(_ connection: StreamConnection, tally: ConnectionTally) {
        forget(connection)
        if summarizes { context.metrics.record(summary(of: connection, tally)) }
        traceLogger?.trace("connection detached", metadata: ["connection.id": "\(connection.id)"])
        intake._withUnsafeGuaranteedRef { $0.connectionClosed(connection.id) }
    }

    /// Out of the registry; its read watcher's memory (stopped by `finish()`) back to the slab.
    private func forget(_ connection: StreamConnection) {
        registry.remove(connection.id)
        watchers.give(connection.readIO)
    }

    private func summary(of connection: StreamConnection, _ tally: ConnectionTally) -> ConnectionSummary {
        tally.summary(
            id: connection.id, peer: connection.clientAddress, local: context.localAddress, otherwise: .serverClosed
        )
    }

    func reportHandlerError(_ error: any Error, client: SocketAddress) {
        context.reportHandlerError(error, client: client)
    }

    func join(_ id: ConnectionID, topic: String) { registry.join(id, topic: topic) }

    func leave(_ id: ConnectionID, topic: String) { registry.leave(id, topic: topic) }

    // MARK: Send and broadcast (StreamServer's hop here)

    func send(_ bytes: [UInt8], to id: ConnectionID) {
        guard let connection = registry.connections[id] else { return }
        registry.deliver(bytes, to: connection)
    }

    func broadcast(_ bytes: [UInt8], topic: String?, except: ConnectionID?) {
        for connection in registry.members(of: topic) where connection.id != except {
            registry.deliver(bytes, to: connection)
        }
    }

    // MARK: Ending

    /// A graceful shutdown's deadline: input ends for every connection, whose handler then finishes its
    /// replies (by default the connection closes once they are sent).
    func endInputOfAll() {
        for connection in registry.members(of: nil) { connection.endInput(because: .drain) }
    }

    /// Closes every connection now.
    func closeAll() {
        for connection in registry.removeAll() {
            connection.finish(error: ConnectionError(.closed, "the server closed"), reason: .serverClosed)
        }
    }
}
