import Logging

/// What every part of one server shares, fixed when the server is made: its configuration, hooks and
/// logger, its socket and loop, where its blocking handlers run, its async tasks and its lifecycle.
///
/// A class, not a struct: objects made per connection (an async handler's bridge and task) hold it, and a
/// copy of every field would cost each connection about 500 bytes. Immutable, so `Sendable`.
internal final class ServerContext: Sendable {
    let configuration: ServerConfiguration
    let hooks: ServerHooks
    let logger: Logger
    let socket: ServerSocket
    let loop: EventLoop
    let workers: Workers
    let asyncTasks: AsyncTasks
    let lifecycle: ServerLifecycle
    /// The server's counters (swift-metrics).
    let metrics: ServerMetrics

    /// Seconds connections get, after their input ended at a graceful shutdown's deadline (or async
    /// handlers after cancellation at close), to send their last replies.
    let lastRepliesGrace = 1.0

    init(
        configuration: ServerConfiguration, hooks: ServerHooks, logger: Logger, socket: ServerSocket, loop: EventLoop,
        workers: Workers, asyncTasks: AsyncTasks, lifecycle: ServerLifecycle, metrics: ServerMetrics
    ) {
        self.configuration = configuration
        self.hooks = hooks
        self.logger = logger
        self.socket = socket
        self.loop = loop
        self.workers = workers
        self.asyncTasks = asyncTasks
        self.lifecycle = lifecycle
        self.metrics = metrics
    }

    /// The address the server is bound to, with the real port when port 0 was asked.
    var localAddress: SocketAddress { socket.localAddress }

    /// Hands a handler's error to the `handleError` hook, or logs it.
    func reportHandlerError(_ error: any Error, client: SocketAddress) {
        metrics.handlerErrors.increment()
        hooks.report(error, client: client, logger: logger)
    }

    /// A connection was accepted and will be served. (Without a metrics backend the counters are no-ops:
    /// not called, ~80 instructions a connection.)
    func connectionOpened() {
        guard metrics.isRecording else { return }
        metrics.accepted.increment()
        metrics.open.increment()
    }

    /// A served connection closed, wherever it ran: records it and calls `connectionClosed`.
    func connectionClosed(_ summary: ConnectionSummary) {
        metrics.record(summary)
        hooks.connectionClosed?(summary)
    }

    /// Why a connection is closed as soon as it is accepted.
    enum Refusal {
        case denied, verify, perClientLimit, perClientRate
        /// Its PROXY protocol header: an untrusted source, or a bad, late or cut header (`peer` is the
        /// balancer's address: the client's is not known).
        case proxy
    }

    /// A connection refused at accept: counted, and `connectionClosed` hears of it (reason `denied` or
    /// `limit`, no bytes).
    func connectionRefused(_ peer: SocketAddress, _ refusal: Refusal) {
        switch refusal {
        case .denied: metrics.refusedDenied.increment()
        case .verify: metrics.refusedVerify.increment()
        case .perClientLimit: metrics.refusedPerClientLimit.increment()
        case .perClientRate: metrics.refusedPerClientRate.increment()
        case .proxy: metrics.refusedProxy.increment()
        }
        guard let connectionClosed = hooks.connectionClosed else { return }
        let reason: ConnectionSummary.Reason = [.denied, .verify, .proxy].contains(refusal) ? .denied : .limit
        connectionClosed(ConnectionSummary(
            id: 0, peer: peer, local: localAddress, duration: 0, bytesReceived: 0, bytesSent: 0, reason: reason
        ))
    }
}
