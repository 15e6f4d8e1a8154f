/// What a stream server with `ServerConfiguration.proxyProtocol` did with the headers of its connections,
/// since it was made (in a `ServerGroup`: this member's share): `statistics[.timedOut]`.
public struct ProxyProtocolStatistics: Sendable, Hashable {
    /// What became of one connection's header.
    public enum Outcome: Sendable, Hashable, CaseIterable {
        /// A header with the client's address: served as that client.
        case proxied
        /// A header without addresses (version 2 `LOCAL`, `PROXY UNKNOWN`): served with the connection's own.
        case local
        /// Closed at once: the source is not in `trustedSources`.
        case untrusted
        /// Closed for a malformed or too long header.
        case invalid
        /// Closed because the header was not complete within `headerTimeout`.
        case timedOut
        /// Closed (or failed) before its header was complete.
        case closedEarly
    }

    private var counts: [Outcome: Int] = [:]

    /// All counts zero.
    public init() {}

    /// How many connections had `outcome`.
    public subscript(outcome: Outcome) -> Int {
        get { counts[outcome, default: 0] }
        set { counts[outcome] = newValue }
    }

    /// Connections refused for their header or its source: all but `proxied` and `local`.
    public var refused: Int { self[.untrusted] + self[.invalid] + self[.timedOut] + self[.closedEarly] }
}
