/// What happened on one stream connection, once it has closed: who, how long, how many bytes each way,
/// and why it ended. `ServerHooks.connectionClosed` receives one per connection, in every mode.
public struct ConnectionSummary: Sendable {
    /// Why a connection ended (extensible: new reasons may be added). Its `description` is a stable,
    /// hyphenated name for logs and metrics labels (`closed-by-peer`).
    public struct Reason: Hashable, Sendable, CustomStringConvertible {
        /// The name, static text: copying a reason (every connection's tally holds one) copies no `String`
        /// (that cost ~300 instructions a connection in reference counting and value-witness calls).
        private let name: StaticString
        private init(_ name: StaticString) { self.name = name }

        /// The reason's name (`idle-timeout`).
        public var description: String { name.description }

        public static func == (lhs: Reason, rhs: Reason) -> Bool { lhs.description == rhs.description }

        public func hash(into hasher: inout Hasher) { hasher.combine(description) }

        /// The client ended its input (or went away in order) and the connection then closed.
        public static let closedByPeer = Reason("closed-by-peer")
        /// The handler closed it (or returned, for blocking and async handlers) before the client ended.
        public static let closedByHandler = Reason("closed-by-handler")
        /// Nothing either way for `idleTimeout`.
        public static let idleTimeout = Reason("idle-timeout")
        /// Nothing from the client for `readTimeout`.
        public static let readTimeout = Reason("read-timeout")
        /// The client took none of the replies for `writeTimeout`.
        public static let writeTimeout = Reason("write-timeout")
        /// `maximumLifetime` ran out.
        public static let lifetime = Reason("max-lifetime")
        /// The client reset the connection or stopped reading (`ECONNRESET`, `EPIPE`).
        public static let reset = Reason("reset")
        /// Refused at once: over `maximumConnectionsPerClient` or `maximumConnectionRatePerClient`.
        public static let limit = Reason("limit")
        /// Refused at once: outside `allow`, inside `deny`, or refused by `verifyRequest`.
        public static let denied = Reason("denied")
        /// Closed as too slow: it let more than the registry allows of `send` / `broadcast` pile up.
        public static let slowConsumer = Reason("slow-consumer")
        /// A graceful shutdown's deadline ended its input, and it closed then.
        public static let drain = Reason("drain")
        /// The server closed it (`close()`, or the end of a graceful shutdown).
        public static let serverClosed = Reason("server-closed")
        /// The handler threw; the error went to `handleError`.
        public static let handlerError = Reason("handler-error")
        /// Any other failure of a read or write.
        public static let error = Reason("error")
    }

    /// The connection's id (as in `StreamConnection.id`, `StreamRequest.id`); 0 for a refused connection.
    public let id: UInt64
    /// The client's address.
    public let peer: SocketAddress
    /// The server's address (the listener's, with its real port).
    public let local: SocketAddress
    /// Seconds from accept to close (monotonic clock).
    public let duration: Double
    /// Bytes read from the client.
    public let bytesReceived: Int
    /// Bytes written to the client (taken by the kernel).
    public let bytesSent: Int
    /// Why it ended.
    public let reason: Reason
}

/// A connection's running figures: plain integers the connection's own thread adds to (two adds per read
/// or write, nothing allocated), and the first reason that explains its end.
struct ConnectionTally {
    /// When it opened (`MonotonicClock`): the summary's duration. 0 where no summary is made (no clock read).
    let opened: Double
    var bytesReceived = 0
    var bytesSent = 0
    /// The first cause seen (a timeout, a reset, the peer's end of input); later events do not replace it.
    var reason: ConnectionSummary.Reason?

    init(opened: Double = MonotonicClock.now) {
        self.opened = opened
    }

    /// Records `reason` unless one is already known.
    mutating func note(_ reason: ConnectionSummary.Reason) {
        if self.reason == nil { self.reason = reason }
    }

    /// The reason a `ConnectionError` stands for.
    static func reason(for error: ConnectionError) -> ConnectionSummary.Reason {
        switch error.code {
        case .peerClosed: return .reset
        case .closed: return .serverClosed
        default: return .error
        }
    }

    func summary(
        id: UInt64, peer: SocketAddress, local: SocketAddress, otherwise: ConnectionSummary.Reason
    ) -> ConnectionSummary {
        ConnectionSummary(
            id: id, peer: peer, local: local, duration: MonotonicClock.now - opened, bytesReceived: bytesReceived,
            bytesSent: bytesSent, reason: reason ?? otherwise
        )
    }
}
