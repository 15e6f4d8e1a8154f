import Logging

/// Several servers on one address, each with its own event loop thread, so that every core serves. The
/// members share one socket (each holds a duplicate of its descriptor): the loops take turns at one queue
/// of connections (or datagrams), and no other process can join it. Only with `reusePort` does each
/// member bind a socket of its own with `SO_REUSEPORT` (the kernel then spreads new connections over them,
/// and other processes that set it may bind the port too). Each member is an ordinary server (start,
/// shutdown, close it like any other).
///
/// - Stream limits hold for the whole group: `maximumConnections` and `maximumConnectionsPerClient` are
///   counted across the members; the rate limits are split evenly among them (each member takes
///   `rate / loops`).
/// - Pool mode gives each member its own pool of `threads`.
/// - `send(_:to:)` and `broadcast(_:topic:except:)` on any member reach the connections of every member.
/// - A group on a Unix path has one member.
public enum ServerGroup {
    /// Stream servers on `configuration.address`, one per loop.
    public static func streamServers(
        loops: Int, configuration: ServerConfiguration, handler: StreamHandler, hooks: ServerHooks = ServerHooks(),
        logger: Logger = .evserver
    ) throws(ServerError) -> [StreamServer] {
        try streamServers(
            loops: loops, configuration: configuration, handler: handler, hooks: hooks, logger: logger, backplane: nil
        )
    }

    /// Stream servers on `configuration.address`, one per loop; with a `backplane`, the group is one node on
    /// it (their `send` and `broadcast` reach the connections of every node); `nil`: the group's own registry.
    public static func streamServers(
        loops: Int, configuration: ServerConfiguration, handler: StreamHandler, hooks: ServerHooks = ServerHooks(),
        logger: Logger = .evserver, backplane: (any ConnectionBackplane)?
    ) throws(ServerError) -> [StreamServer] {
        let limits = ConnectionLimits(
            maximumConnections: configuration.maximumConnections,
            maximumPerClient: configuration.maximumConnectionsPerClient
        )
        let router = ConnectionRouter(backplane: backplane)
        var index = 0
        let sharesSocket = loops > 1 && !configuration.reusePort && !configuration.address.isUnix
        return try members(loops: loops, configuration: configuration) { (member, socket) throws(ServerError) in
            defer { index += 1 }
            let membership = StreamServer.GroupMembership(
                socket: socket, limits: limits, router: router, index: index, sharesSocket: sharesSocket
            )
            return try StreamServer(
                configuration: member, handler: handler, hooks: hooks, logger: logger, member: membership
            )
        }
    }

    /// Datagram servers on `configuration.address`, one per loop with `reusePort` (the kernel spreads the
    /// datagrams over their sockets by sender); without it one: loops sharing a datagram socket would all
    /// wake for every datagram, costing more CPU than a second loop gains.
    public static func datagramServers(
        loops: Int, configuration: ServerConfiguration, handler: DatagramHandler, hooks: ServerHooks = ServerHooks(),
        logger: Logger = .evserver
    ) throws(ServerError) -> [DatagramServer] {
        let loops = configuration.reusePort ? loops : min(loops, 1)
        return try members(loops: loops, configuration: configuration) { (member, socket) throws(ServerError) in
            try DatagramServer(configuration: member, handler: handler, hooks: hooks, logger: logger, sharing: socket)
        }
    }

    /// Makes the members: the first binds (learning the real port when 0 was asked); the others get a
    /// duplicate of its socket, or with `reusePort` bind their own to the same port. If one fails, those
    /// made are closed.
    private static func members<Server: TransportServer>(
        loops: Int, configuration: ServerConfiguration,
        make: (ServerConfiguration, ServerSocket?) throws(ServerError) -> Server
    ) throws(ServerError) -> [Server] {
        guard loops >= 1 else {
            throw ServerError(.invalidConfiguration, "a server group needs at least 1 loop (got \(loops))")
        }
        let count = configuration.address.isUnix ? 1 : loops
        var member = configuration
        member.maximumConnectionRate = configuration.maximumConnectionRate.map { $0 / Double(count) }
        member.maximumConnectionRatePerClient = configuration.maximumConnectionRatePerClient.map { $0 / Double(count) }
        var servers: [Server] = []
        do {
            for _ in 0..<count {
                // A socket handed in is adopted once; the other members serve duplicates of it.
                let ownSocket = member.reusePort && member.boundSocket == nil
                let shared = ownSocket ? nil : try servers.first?.engine.context.socket.duplicate()
                let server = try make(member, shared)
                servers.append(server)
                member.address = server.localAddress  // the real port, for the next members
            }
        } catch {
            for server in servers { server.close() }
            throw error
        }
        return servers
    }
}
