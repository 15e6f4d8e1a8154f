import Logging

/// The loop-side half of a `DatagramServer`: the read watcher, the session, the event handler and its
/// channel, and dispatch of each datagram to the execution mode.
///
/// Confined to the server's loop thread (the facade reaches it only through `LoopBound` inside
/// `loop.execute`).
final class DatagramServerCore: ServerCore {
    /// Set by `attach`, the first work the loop runs.
    private weak var server: DatagramServer?

    private let loop: EventLoop
    private let socket: DatagramSocket
    private let configuration: ServerConfiguration
    private let logger: Logger
    private let pool: WorkerPool?
    private let policy: AddressPolicy
    /// `maximumDatagramSize` bytes: a datagram that does not fit is reported as truncated by the kernel.
    private let buffer: UnsafeMutableRawBufferPointer
    private var readWatcher: IOWatcher!
    private var session: ServingSession!
    private var channel: DatagramChannel?
    private var eventHandler: (any DatagramEventHandler)?
    private var asyncHandler: LoopBound<any DatagramAsyncHandler>?
    /// `.thread` mode reached `maximumThreads`.
    private var pausedForWorkers = false
    /// Event mode: too many replies wait for the kernel.
    private var pausedForBackPressure = false
    private var isClosed = false
    private var oversizeLog = LogThrottle()
    private var poolFullLog = LogThrottle()

    init(socket: DatagramSocket, loop: EventLoop, configuration: ServerConfiguration, pool: WorkerPool?, logger: Logger) {
        self.socket = socket
        self.loop = loop
        self.configuration = configuration
        self.pool = pool
        self.logger = logger
        policy = configuration.addressPolicy
        buffer = .allocate(byteCount: configuration.maximumDatagramSize, alignment: 16)
        readWatcher = IOWatcher(loop: loop, descriptor: socket.descriptor, events: .read) { [unowned self] _ in
            self.readable()
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
        buffer.deallocate()
    }

    /// Links the core to its facade; makes the event handler's channel.
    func attach(to server: DatagramServer) {
        self.server = server
        if case .blocking = server.handler {} else {
            channel = DatagramChannel(socket: socket, server: server, loop: loop, configuration: configuration) {
                [unowned self] paused in
                self.pausedForBackPressure = paused
                self.updateReadWatcher()
            }
        }
    }

    // MARK: Sessions

    func startServing(session number: Int, oneRequest: Bool, timeout: Double?) {
        guard !isClosed else { return }
        guard session.begin(number: number, oneRequest: oneRequest, timeout: timeout, hasServiceActions: server?.hooks.serviceActions != nil) else {
            server?.runtime.sessionEnded(timedOut: false)
            return
        }
        updateReadWatcher()
    }

    func stopServing(session number: Int?) {
        stopServing(session: number, timedOut: false)
    }

    private func stopServing(session number: Int?, timedOut: Bool) {
        guard session.end(number: number) else { return }
        updateReadWatcher()
        server?.runtime.sessionEnded(timedOut: timedOut)
    }

    func workersHaveRoom() {
        pausedForWorkers = false
        updateReadWatcher()
    }

    private func updateReadWatcher() {
        if session.isServing && !pausedForWorkers && !pausedForBackPressure && !isClosed {
            readWatcher.start()
        } else {
            readWatcher.stop()
        }
    }

    // MARK: Receiving

    private func readable() {
        // Bounded, so the loop's other work (timers, cross-thread work) runs during a flood.
        for _ in 0..<64 {
            guard readWatcher.isActive, let server else { return }
            let received: Socket.ReceivedDatagram?
            do {
                received = try socket.socket.receiveDatagram(into: buffer)
            } catch {
                logger.debug("recvfrom failed", metadata: ["error": "\(error)"])
                return
            }
            guard let received else { return }
            guard !received.truncated else {
                reportOversize(received)
                continue
            }
            dispatch(UnsafeRawBufferPointer(rebasing: buffer[..<received.length]), from: received.sender, server: server)
            if session.isOneRequest {
                stopServing(session: nil)
                return
            }
        }
    }

    private func dispatch(_ bytes: UnsafeRawBufferPointer, from client: SocketAddress, server: DatagramServer) {
        let counters = socket.counters
        guard policy.admits(client), server.hooks.verifyRequest(client) else {
            counters.rejected.increment()
            logger.trace("datagram refused (address policy or verifyRequest)", metadata: ["connection.peer": "\(client)"])
            return
        }
        switch server.handler {
        case .event(let makeHandler):
            counters.handled.increment()
            let handler = eventHandler ?? makeHandler()
            eventHandler = handler
            do {
                try handler.channel(channel!, received: bytes, from: client)
            } catch {
                server.reportHandlerError(error, client: client)
            }
        case .async(let makeHandler):
            counters.handled.increment()
            let handler = asyncHandler ?? LoopBound(makeHandler(), loop: loop)
            asyncHandler = handler
            let channel = LoopBound(channel!, loop: loop)
            let datagram = Array(bytes)
            server.runtime.asyncTaskStarted()
            Task(executorPreference: server.runtime.executor) { [unowned(unsafe) server] in
                do {
                    try await handler.value.handle(datagram, from: client, channel: channel.value)
                } catch {
                    server.reportHandlerError(error, client: client)
                }
                server.runtime.asyncTaskEnded()
            }
        case .blocking:
            let datagram = Array(bytes)
            // Unowned: close() waits for the workers before the server's memory goes.
            let job: @Sendable () -> Void = { [unowned(unsafe) server] in
                server.serveBlocking(datagram: datagram, client: client)
            }
            switch configuration.mode {
            case .sync:
                counters.handled.increment()
                job()
            case .thread:
                counters.handled.increment()
                if !server.runtime.startWorkerThread(job) {
                    pausedForWorkers = true
                    updateReadWatcher()
                }
            case .pool:
                if pool!.trySubmit(job) {
                    counters.handled.increment()
                } else {
                    let dropped = counters.droppedPoolFull.increment()
                    if let count = poolFullLog.occurrence() {
                        logger.warning(
                            "pool full: dropping datagrams (\(count) since the last warning, \(dropped) in all); raise --threads/--queue or slow the senders",
                            metadata: ["connection.peer": "\(client)"]
                        )
                    }
                }
            case .event, .async:
                preconditionFailure("a blocking handler in event or async mode is rejected by DatagramServer.init")
            }
        }
    }

    private func reportOversize(_ datagram: Socket.ReceivedDatagram) {
        let total = socket.counters.oversized.increment()
        if let count = oversizeLog.occurrence() {
            logger.warning(
                "dropped a datagram of \(datagram.length) bytes, larger than the maximum of \(configuration.maximumDatagramSize) (\(count) since the last warning, \(total) in all)",
                metadata: ["connection.peer": "\(datagram.sender)"]
            )
        }
    }

    // MARK: Closing

    /// Stops every watcher and sends what the kernel takes of the queued replies. The facade closes the
    /// socket once the workers are done with it.
    func close() {
        guard !isClosed else { return }
        stopServing(session: nil)
        isClosed = true
        readWatcher.stop()
        session.stopTimers()
        channel?.close()
    }
}
