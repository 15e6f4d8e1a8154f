/// How a stream server reads the PROXY protocol header (version 1 or 2, told apart on each connection)
/// that a load balancer sends before the client's bytes: `ServerConfiguration.proxyProtocol`.
///
/// With it, every connection must start with a header, from a trusted source: the server reads it on the
/// loop thread before anything else happens to the connection, and from then on the client's address in
/// the header is the connection's address everywhere: `StreamConnection.clientAddress`,
/// `StreamRequest.clientAddress`, `AsyncConnection.clientAddress`, `allow`/`deny`, `verifyRequest`, the
/// per-client limits and rates, and the hooks. A header without addresses (a version 2 `LOCAL` header, sent
/// by balancers' health checks, or `PROXY UNKNOWN`) keeps the connection's own address. The header never
/// reaches the handler; the bytes after it do.
///
/// A connection from a source outside `trustedSources`, or whose header is malformed, too long, or not
/// complete within `headerTimeout`, is closed and counted in `StreamServer.proxyProtocolStatistics`.
public struct ProxyProtocolPolicy: Sendable, Hashable {
    /// The sources (the balancers) allowed to send headers; connections from elsewhere are closed before
    /// any byte is read. Default `loopback`: a balancer on the same host. A header from an untrusted
    /// source would let anyone claim any address, so name remote balancers here, never `0.0.0.0/0`
    /// unless the network itself admits only them. Clients of a Unix socket are always trusted (its file's
    /// permissions guard it).
    public var trustedSources: [AddressRange]
    /// Seconds a connection has to send its complete header; then it is closed. Default 3.
    public var headerTimeout: Double

    /// `127.0.0.0/8` and `::1`: a balancer on this host.
    public static let loopback: [AddressRange] = [
        try! AddressRange(parsing: "127.0.0.0/8"), try! AddressRange(parsing: "::1/128"),
    ]

    /// Headers from `trustedSources` (default: loopback only), complete within `headerTimeout` seconds.
    public init(trustedSources: [AddressRange] = ProxyProtocolPolicy.loopback, headerTimeout: Double = 3) {
        self.trustedSources = trustedSources
        self.headerTimeout = headerTimeout
    }

    /// Whether `peer` may send a header.
    func trusts(_ peer: SocketAddress) -> Bool {
        peer.isUnix || trustedSources.contains { $0.contains(peer) }
    }
}
