#if canImport(Glibc)
import Glibc
#endif

/// Everything a server needs to know before it binds, with the defaults a production server wants.
///
/// Stream and datagram servers share it; each setting says when it applies to one kind only.
public struct ServerConfiguration: Sendable {
    /// Where to listen: an IP address and port (port 0 picks a free port) or a Unix socket path.
    public var address: SocketAddress
    /// A socket already bound (and listening, for a stream server; `listen` is called if not) to serve
    /// instead of binding `address`, which then only names it in messages: one inherited from a supervisor
    /// or from systemd's socket activation, or bound by the program itself (socketserver's
    /// `bind_and_activate=False`). The server owns it from then on and closes it; it never removes a Unix
    /// socket file it did not create. `nil` (the default): bind `address`.
    public var boundSocket: CInt? = nil
    /// With `boundSocket` on a Unix path: `true` when this server takes the socket file over with the
    /// socket (it continues the process that bound it, as after a reload: see
    /// `SocketServer.handOverSocketFile()`), so closing it removes the file, as a server that bound it
    /// would (only while it is still the file found at adoption). Default `false`.
    public var ownsBoundSocketFile: Bool = false
    /// How handlers run.
    public var mode: ExecutionMode
    /// The kernel's queue of connections not yet accepted (`listen()` backlog). Default `SOMAXCONN`.
    public var backlog: Int = Int(SOMAXCONN)
    /// `SO_REUSEADDR` on TCP listeners (never on UDP, where it would let a second server share the port),
    /// so a restarted server can bind while old connections linger in TIME_WAIT. On by default.
    public var reuseAddress: Bool = true
    /// `SO_REUSEPORT`: let several sockets bind the same address and the kernel spread connections over
    /// them. Off by default: with it, a second server on the same port (any process of the same user that
    /// sets it) starts silently and takes a share of the clients. A `ServerGroup` does not need it.
    public var reusePort: Bool = false
    /// On an IPv6 address: `true` serves IPv6 only; `false` (the default) also serves IPv4 clients, which
    /// appear as `::ffff:a.b.c.d` (dual stack). Set explicitly, whatever the system's default.
    public var ipv6Only: Bool = false
    /// `.thread` mode: the most handler threads at once. At the limit a stream server stops accepting and a
    /// datagram server stops reading (the kernel queues the rest) until a thread ends. Default 1024.
    public var maximumThreads: Int = 1024
    /// Datagram servers: the largest datagram delivered to a handler. A larger one is dropped whole, counted
    /// in `DatagramServer.statistics` and logged, never delivered cut. Default 65 507, the most IPv4 carries.
    public var maximumDatagramSize: Int = 65_507
    /// Stream servers: `TCP_NODELAY` on accepted TCP connections (no Nagle delay for small replies). On by
    /// default.
    public var noDelay: Bool = true
    /// Stream servers: the kernel's send buffer for each connection (`SO_SNDBUF`), which bounds what a
    /// client that does not read can make the kernel hold for it (the write timeout only starts once the
    /// kernel's buffer is full). `nil`: the system's default (it grows to several MiB on Linux).
    public var sendBufferSize: Int? = nil
    /// Seconds a connection may stay without receiving or sending a byte before it is closed; in blocking
    /// modes a read or write that waits longer throws `ConnectionError.timedOut`. `nil`: no limit.
    public var idleTimeout: Double? = nil
    /// Seconds a connection may go without sending a byte (event and async modes: while the server is ready
    /// to read; blocking modes: each read). Stops slowloris clients that trickle bytes within the idle timeout's
    /// reach only if they are slower than this. `nil`: no limit.
    public var readTimeout: Double? = nil
    /// Seconds queued output may wait for the client to take any of it before the connection is closed (a
    /// client that never reads its replies). Blocking modes: each write. It counts from the moment the
    /// kernel's send buffer is full and output queues in the server, so a client that never reads can first
    /// make the kernel hold a send buffer's worth (bound it with `sendBufferSize`). `nil`: no limit.
    public var writeTimeout: Double? = nil
    /// Seconds after which a connection is closed whatever it is doing. `nil`: no limit.
    public var maximumLifetime: Double? = nil
    /// Stream servers: the most connections open at once, in every mode. At the limit the server stops
    /// accepting (the kernel backlog holds the rest, as `tcpserver -c` does) and resumes when one closes.
    /// `nil`: no limit (but see `maximumThreads` for `.thread` mode).
    public var maximumConnections: Int? = nil
    /// Stream servers: the most connections open at once from one IP address; more are closed at once.
    public var maximumConnectionsPerClient: Int? = nil
    /// Stream servers: new connections accepted per second at most, in bursts of up to as many; above it
    /// accepting pauses (the kernel backlog holds the rest). `nil`: no limit.
    public var maximumConnectionRate: Double? = nil
    /// Stream servers: new connections per second at most from one IP address (bursts of up to as many);
    /// more are closed at once, so one client cannot use up `maximumConnectionRate`. `nil`: no limit.
    public var maximumConnectionRatePerClient: Double? = nil
    /// Clients allowed to connect or send datagrams; empty allows all. Checked before `verifyRequest`.
    public var allow: [AddressRange] = []
    /// Clients refused, whatever `allow` says.
    public var deny: [AddressRange] = []
    /// Stream servers: every connection starts with a PROXY protocol header (version 1 or 2) from a load
    /// balancer in `ProxyProtocolPolicy.trustedSources`; the client's address in it replaces the
    /// balancer's everywhere (handlers, `allow`/`deny`, per-client limits, hooks). `nil` (the default):
    /// no header is expected.
    public var proxyProtocol: ProxyProtocolPolicy? = nil
    /// The longest line `StreamRequest.readLine()` reads by default (memory per connection stays bounded);
    /// a longer one throws `ConnectionError.lineTooLong`. Default 64 KiB.
    public var maximumLineLength: Int = 64 * 1024
    /// Blocking and async modes: the most input a `StreamRequest` or `AsyncConnection` holds unread
    /// (`read(exactly:)` of more throws `ConnectionError.inputTooLarge`). Event handlers get bytes as they
    /// arrive and buffer nothing in the library; `InputBuffer(limit:)` gives them the same bound. Default
    /// 1 MiB; at least `maximumLineLength`.
    public var maximumInputBuffer: Int = 1024 * 1024
    /// Seconds `handleRequest()` waits for a client before calling the `handleTimeout` hook; `nil` waits
    /// forever. (socketserver's `timeout`; `serveForever` ignores it.)
    public var timeout: Double? = nil
    /// Event and async modes: when more than this many bytes wait to be sent to a client (a datagram server:
    /// to all clients), reading pauses (an async handler's `write` suspends).
    public var writeBufferHighWaterMark: Int = 64 * 1024
    /// Event and async modes: reading resumes, and the handler hears `connectionWritable` (an async `write`
    /// resumes), when the queue falls to this many bytes.
    public var writeBufferLowWaterMark: Int = 16 * 1024
    /// Seconds open connections get to finish when a service group shuts the server down gracefully (its
    /// `run()` as a swift-service-lifecycle `Service`). Default 10.
    public var gracefulShutdownTimeout: Double = 10
    /// Seconds between calls of the `serviceActions` hook while serving.
    public var serviceActionsInterval: Double = 0.5

    /// The upper bound of `maximumDatagramSize`: 16 MiB (Unix datagrams may exceed UDP's 64 KiB).
    public static let largestDatagramSize = 16 * 1024 * 1024

    /// A configuration for `address` in `mode`, with the defaults of every other setting.
    public init(address: SocketAddress, mode: ExecutionMode = .event) {
        self.address = address
        self.mode = mode
    }
}

extension ServerConfiguration {
    /// The longest timeout or lifetime accepted: a year, in seconds (longer ones are mistakes, and
    /// infinity cannot be scheduled).
    public static let longestDuration = 31_536_000.0
    /// `sendBufferSize`'s range, in bytes.
    public static let sendBufferRange = 4096...(64 << 20)

    var addressPolicy: AddressPolicy { AddressPolicy(allow: allow, deny: deny) }
}
