import Logging

/// Several servers on one address, each with its own event loop thread and its own `SO_REUSEPORT` socket,
/// so that every core serves: the kernel spreads new connections (and datagrams, by sender) over the
/// sockets. Each member is an ordinary server (start, shutdown, close it like any other).
///
/// - Stream limits hold for the whole group: `maximumConnections` and `maximumConnectionsPerClient` are
///   counted across the members; the rate limits are split evenly among them (each member takes
///   `rate / loops`, as the kernel gives each about `1 / loops` of the connections).
/// - Pool mode gives each member its own pool of `threads`.
/// - `send(_:to:)` and `broadcast(_:topic:except:)` on any member reach the connections of every member.
/// - A Unix socket cannot be shared this way: a group on a Unix path has one member.
public enum ServerGroup {
    /// Stream servers on `configuration.address`, one per loop.
    public static func streamServers(
        loops: Int, configuration: ServerConfiguration, handler: StreamHandler, hooks: ServerHooks = ServerHooks(),
        logger: Logger = Logger(label: "evserver", factory: { _ in SwiftLogNoOpLogHandler() })
    ) throws(ServerError) -> [StreamServer] {
        let admission = ConnectionAdmission(
            maximumConnections: configuration.maximumConnections,
            maximumPerClient: configuration.maximumConnectionsPerClient
        )
        let link = ServerGroupLink()
        var index = 0
        return try members(loops: loops, configuration: configuration) { (member) throws(ServerError) in
            defer { index += 1 }
            return try StreamServer(
                configuration: member, handler: handler, hooks: hooks, logger: logger, admission: admission,
                group: (link, index)
            )
        }
    }

    /// Datagram servers on `configuration.address`, one per loop.
    public static func datagramServers(
        loops: Int, configuration: ServerConfiguration, handler: DatagramHandler, hooks: ServerHooks = ServerHooks(),
        logger: Logger = Logger(label: "evserver", factory: { _ in SwiftLogNoOpLogHandler() })
    ) throws(ServerError) -> [DatagramServer] {
        try members(loops: loops, configuration: configuration) { (member) throws(ServerError) in
            try DatagramServer(configuration: member, handler: handler, hooks: hooks, logger: logger)
        }
    }

    /// Makes the members: the first binds (learning the real port when 0 was asked), the others bind to
    /// the same port. If one fails, those made are closed.
    private static func members<Server: SocketServer>(
        loops: Int, configuration: ServerConfiguration, make: (ServerConfiguration) throws(ServerError) -> Server
    ) throws(ServerError) -> [Server] {
        guard loops >= 1 else { throw ServerError(.invalidConfiguration, "a server group needs at least 1 loop (got \(loops))") }
        let count = configuration.address.isUnix ? 1 : loops
        var member = configuration
        if count > 1 {
            member.reusePort = true
            member.maximumConnectionRate = configuration.maximumConnectionRate.map { $0 / Double(count) }
            member.maximumConnectionRatePerClient = configuration.maximumConnectionRatePerClient.map { $0 / Double(count) }
        }
        var servers: [Server] = []
        do {
            for _ in 0..<count {
                let server = try make(member)
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
