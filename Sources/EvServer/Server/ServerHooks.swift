import Logging

/// The places where socketserver users override methods, as closures: set the ones you need.
///
/// `verifyRequest` and `handleTimeout` run on the loop thread; `handleError` runs where the handler
/// ran (the loop thread or a worker thread); `serviceActions` runs on the loop thread while serving.
/// Keep them short and non-blocking.
public struct ServerHooks: Sendable {
    /// Decides whether to serve a client; `false` closes its connection at once and no handler runs.
    public var verifyRequest: @Sendable (_ client: SocketAddress) -> Bool
    /// Called once for each error a handler throws; the server closes that connection and keeps serving.
    /// `nil` logs the error at `error` level, with the client's address, through the server's logger (by
    /// default the process's `LoggingSystem`: standard output unless the program bootstrapped another).
    public var handleError: (@Sendable (_ error: any Error, _ client: SocketAddress) -> Void)?
    /// Called when `handleRequest()` waited `ServerConfiguration.timeout` seconds without a client.
    public var handleTimeout: @Sendable () -> Void
    /// Called every `ServerConfiguration.serviceActionsInterval` seconds while the server serves.
    public var serviceActions: (@Sendable () -> Void)?
    /// Called with the server's new socket after the library's options and before it binds (the reason
    /// socketserver users override `server_bind`): set socket options with `setsockopt`. What it throws is
    /// reported as `ServerError.invalidConfiguration` and no server is made. Not called for `boundSocket`.
    public var configureListeningSocket: (@Sendable (_ descriptor: CInt) throws -> Void)?
    /// Called on the loop thread with each accepted connection's socket before its handler runs (the reason
    /// socketserver users override `get_request`): set per-connection options. Do not close it.
    public var configureConnection: (@Sendable (_ descriptor: CInt, _ client: SocketAddress) -> Void)?
    /// Called once for each stream connection that closed, in every mode, with its summary: peer, duration,
    /// bytes each way and why it ended (for access logs). Connections refused at accept are reported too
    /// (reason `denied` or `limit`). It runs where the connection closed: on the loop thread for event and
    /// async connections (and refusals), on the handler's thread (a worker, or the loop in `.sync`) for
    /// blocking ones; several may run at once. Keep it short and non-blocking.
    public var connectionClosed: (@Sendable (_ summary: ConnectionSummary) -> Void)?

    /// Hooks that behave as socketserver's defaults: every client verified, errors logged, nothing on timeout.
    public init(
        verifyRequest: @escaping @Sendable (SocketAddress) -> Bool = { _ in true },
        handleError: (@Sendable (any Error, SocketAddress) -> Void)? = nil,
        handleTimeout: @escaping @Sendable () -> Void = {},
        serviceActions: (@Sendable () -> Void)? = nil,
        configureListeningSocket: (@Sendable (CInt) throws -> Void)? = nil,
        configureConnection: (@Sendable (CInt, SocketAddress) -> Void)? = nil,
        connectionClosed: (@Sendable (ConnectionSummary) -> Void)? = nil
    ) {
        self.verifyRequest = verifyRequest
        self.handleError = handleError
        self.handleTimeout = handleTimeout
        self.serviceActions = serviceActions
        self.configureListeningSocket = configureListeningSocket
        self.configureConnection = configureConnection
        self.connectionClosed = connectionClosed
    }
}

extension ServerHooks {
    /// Hands a handler's error to `handleError`, or logs it at `error` when that hook is not set.
    func report(_ error: any Error, client: SocketAddress, logger: Logger) {
        if let handleError {
            handleError(error, client)
        } else {
            logger.error("handler failed", metadata: ["connection.peer": "\(client)", "error": "\(error)"])
        }
    }
}

extension Logger {
    /// The servers' default logger: label `evserver`, through the process's `LoggingSystem` (swift-log's
    /// default prints `info` and above to standard output), so a handler's error is never silent.
    public static var evserver: Logger { Logger(label: "evserver") }
    /// A logger that drops everything, for servers that must say nothing.
    public static var silent: Logger { Logger(label: "evserver", factory: { _ in SwiftLogNoOpLogHandler() }) }
}
