import CoreMetrics
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The loop side of a `DatagramServer` (its `ServerTransport`): receives datagrams while the intake lets it,
/// applies the address policy and `verifyRequest`, and hands each datagram to its execution mode — the one
/// event handler, one of the async handler's reused tasks (`DatagramAsyncTasks`), or a blocking handler on
/// the workers.
///
/// Confined to the server's loop thread.
final class DatagramReceiver: ServerTransport {
    let intake: Intake
    private let context: ServerContext
    private let handler: DatagramHandler
    private let socket: DatagramSocket
    /// What is read per datagram, kept as stored `let`s: reaching them costs no retain, unlike reading
    /// them through `context` or `socket` (`socket.socket`, `socket.counters`, `context.hooks`...).
    private let receiving: Socket
    private let counters: DatagramCounters
    private let metrics: ServerMetrics
    private let policy: AddressPolicy
    private let verifyRequest: @Sendable (SocketAddress) -> Bool
    /// `maximumDatagramSize` bytes: a datagram that does not fit is reported as truncated by the kernel.
    private let buffer: UnsafeMutableRawBufferPointer
    /// Where the kernel writes each datagram's sender.
    private let senderStorage: UnsafeMutablePointer<sockaddr_storage>
    /// `context.metrics.datagramsReceived`, kept here (a stored `let`, read per wake-up).
    private let datagramsReceived: Counter
    /// Set by `attach`, the first work the loop runs. (Unowned: the server closes the loop before it goes.)
    private unowned(unsafe) var server: DatagramServer!
    /// Event and async modes: the handlers' view of the socket, made by `attach`.
    private var channel: DatagramChannel?
    /// Event mode: the one handler and its channel, made by `attach` and kept (retained once, released by
    /// `deinit`) for the per-datagram path, which reaches them without a retain or release.
    @exclusivity(unchecked) private var eventMode: Unmanaged<EventMode>?
    /// Async mode: the handler and its reused tasks, made by `attach` and kept (retained once, released by
    /// `deinit`) for the per-datagram path, which reaches them without a retain or release.
    @exclusivity(unchecked) private var asyncTasks: Unmanaged<DatagramAsyncTasks>?
    private var oversizeLog = LogThrottle()
    private var droppedLog = LogThrottle()

    init(context: ServerContext, handler: DatagramHandler, socket: DatagramSocket) {
        self.context = context
        self.handler = handler
        self.socket = socket
        intake = Intake(context: context)
        receiving = socket.socket
        counters = socket.counters
        metrics = context.metrics
        policy = context.configuration.addressPolicy
        verifyRequest = context.hooks.verifyRequest
        buffer = .allocate(byteCount: context.configuration.maximumDatagramSize, alignment: 16)
        senderStorage = .allocate(capacity: 1)
        senderStorage.initialize(to: sockaddr_storage())
        datagramsReceived = context.metrics.datagramsReceived
        intake.transport = self
    }

    deinit {
        buffer.deallocate()
        senderStorage.deallocate()
        eventMode?.release()
        asyncTasks?.release()
    }

    /// Links the receiver to its server; makes the event and async handlers' channel, and the event or async
    /// handler (its factory is called once, on the loop thread: this is the loop's first work).
    func attach(to unretained: Unmanaged<DatagramServer>) {
        unretained._withUnsafeGuaranteedRef { server = $0 }
        if case .blocking = handler { return }
        let channel = unretained._withUnsafeGuaranteedRef { server in
            DatagramChannel(socket: socket, server: server, loop: context.loop, configuration: context.configuration) {
                [unowned self] paused in
                if paused { intake.pause(.replyBackPressure) } else { intake.resume(.replyBackPressure) }
            }
        }
        self.channel = channel
        switch handler {
        case .event(let makeHandler):
            eventMode = Unmanaged.passRetained(EventMode(handler: makeHandler(), channel: channel))
        case .async(let makeHandler):
            let tasks = DatagramAsyncTasks(handler: makeHandler(), channel: channel, context: context)
            asyncTasks = Unmanaged.passRetained(tasks)
        case .blocking:
            break
        }
    }

    // MARK: Receiving (ServerTransport)

    /// The most datagrams taken per wake-up, so the loop's other work (timers, cross-thread work) runs
    /// during a flood.
    static let batch = 64

    func takeWork() {
        // Counted once per wake-up (metrics), not per datagram.
        var count = 0
        defer {
            if count > 0 { datagramsReceived.increment(by: count) }
            // Async mode: the wake-up's datagrams go to the handler's tasks together.
            asyncTasks?._withUnsafeGuaranteedRef { $0.flush() }
        }
        for _ in 0..<Self.batch {
            guard intake.isTaking else { return }
            let received: Socket.ReceivedDatagram?
            do {
                received = try receiving.receiveDatagram(into: buffer, senderStorage: senderStorage)
            } catch {
                context.logger.debug("recvfrom failed", metadata: ["error": "\(error)"])
                return
            }
            guard let datagram = received else { return }
            count += 1
            guard !datagram.truncated else {
                reportOversize(datagram)
                continue
            }
            dispatch(UnsafeRawBufferPointer(rebasing: buffer[..<datagram.length]), from: datagram.sender)
            intake.requestTaken()
        }
    }

    /// Datagrams are not left waiting in a way that matters at shutdown: nothing to take.
    func takeWaitingWork() {}

    @inline(__always)
    private func dispatch(_ bytes: UnsafeRawBufferPointer, from client: SocketAddress) {
        guard policy.admits(client), verifyRequest(client) else {
            reject(client)
            return
        }
        guard let eventMode else {
            dispatchToTaskOrWorker(bytes, from: client)
            return
        }
        counters.countHandledOnLoop()
        do {
            try eventMode._withUnsafeGuaranteedRef {
                try $0.handler.channel($0.channel, received: bytes, from: client)
            }
        } catch {
            context.reportHandlerError(error, client: client)
        }
    }

    private func reject(_ client: SocketAddress) {
        counters.rejected.increment()
        metrics.droppedRejected.increment()
        context.logger.trace(
            "datagram refused (address policy or verifyRequest)", metadata: ["connection.peer": "\(client)"]
        )
    }

    /// Async and blocking modes: a copy of the datagram goes to a task (queued until the end of the wake-up)
    /// or a worker.
    private func dispatchToTaskOrWorker(_ bytes: UnsafeRawBufferPointer, from client: SocketAddress) {
        switch handler {
        case .event:
            preconditionFailure("an event handler is made by attach")
        case .async:
            counters.countHandledOnLoop()
            asyncTasks!._withUnsafeGuaranteedRef { $0.enqueue(bytes, from: client) }
        case .blocking(let makeHandler):
            let datagram = Array(bytes)
            // Unowned: close() waits for the workers before the server's memory goes.
            let job: @Sendable () -> Void = { [unowned(unsafe) server = server!, socket] in
                server.serveBlocking(datagram: datagram, client: client, socket: socket, handler: makeHandler())
            }
            runBlocking(job, client: client)
        }
    }

    private func runBlocking(_ job: @escaping @Sendable () -> Void, client: SocketAddress) {
        switch context.workers.run(job, whenFull: .drop) {
        case .ran, .started(hasRoom: true):
            counters.handled.increment()
        case .started(hasRoom: false):
            counters.handled.increment()
            intake.pause(.workersBusy)
        case .droppedFull:
            context.metrics.droppedPoolFull.increment()
            reportDropped(
                counters.droppedPoolFull.increment(), client: client, why: "pool full",
                hint: "raise --threads/--queue or slow the senders"
            )
        case .failed(let error):
            let total = counters.droppedNoThread.increment()
            context.metrics.droppedNoThread.increment()
            reportDropped(
                total, client: client, why: "cannot start a thread (\(error.reason))",
                hint: "raise the process or memory limit"
            )
            intake.pauseForShortage()
        }
    }

    private func reportDropped(_ total: Int, client: SocketAddress, why: String, hint: String) {
        guard let count = droppedLog.occurrence() else { return }
        context.logger.warning(
            "\(why): dropping datagrams (\(count) since the last warning, \(total) in all); \(hint)",
            metadata: ["connection.peer": "\(client)", "evserver.listener": "\(context.localAddress)"]
        )
    }

    private func reportOversize(_ datagram: Socket.ReceivedDatagram) {
        let total = socket.counters.oversized.increment()
        context.metrics.droppedOversized.increment()
        if let count = oversizeLog.occurrence() {
            context.logger.warning(
                """
                dropped a datagram of \(datagram.length) bytes, larger than the maximum of \
                \(context.configuration.maximumDatagramSize) (\(count) since the last warning, \(total) in all)
                """,
                metadata: ["connection.peer": "\(datagram.sender)"]
            )
        }
    }

    // MARK: Closing (ServerTransport)

    /// Async mode: ends the handler tasks parked between datagrams (busy ones end when their handler returns).
    func closeConnections() {
        asyncTasks?._withUnsafeGuaranteedRef { $0.close() }
    }

    /// Stops reading and sends what the kernel takes of the queued replies. The engine closes the socket
    /// once the workers are done with it.
    func close() {
        intake.stop()
        asyncTasks?._withUnsafeGuaranteedRef { $0.close() }
        channel?.close()
    }
}

/// Event mode's handler and channel, reached together through one unretained reference per datagram.
private final class EventMode {
    let handler: any DatagramEventHandler
    let channel: DatagramChannel

    init(handler: any DatagramEventHandler, channel: DatagramChannel) {
        self.handler = handler
        self.channel = channel
    }
}
