import Logging

/// What every part of one server shares, fixed when the server is made: its configuration, hooks and
/// logger, its socket and loop, where its blocking handlers run, its async tasks and its lifecycle.
struct ServerContext: Sendable {
    let configuration: ServerConfiguration
    let hooks: ServerHooks
    let logger: Logger
    let socket: ServerSocket
    let loop: EventLoop
    let workers: Workers
    let asyncTasks: AsyncTasks
    let lifecycle: ServerLifecycle

    /// Seconds connections get, after their input ended at a graceful shutdown's deadline (or async
    /// handlers after cancellation at close), to send their last replies.
    let lastRepliesGrace = 1.0

    /// The address the server is bound to, with the real port when port 0 was asked.
    var localAddress: SocketAddress { socket.localAddress }

    /// Hands a handler's error to the `handleError` hook, or logs it.
    func reportHandlerError(_ error: any Error, client: SocketAddress) {
        hooks.report(error, client: client, logger: logger)
    }
}
