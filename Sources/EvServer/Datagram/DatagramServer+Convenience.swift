/// A UDP server (IPv4 or IPv6, chosen by the address). The same type as `DatagramServer`.
public typealias UDPServer = DatagramServer
/// A Unix datagram socket server. The same type as `DatagramServer`.
public typealias UnixDatagramServer = DatagramServer

extension DatagramServer {
    /// A UDP server on `host:port` (a numeric address or a name, resolved now; port 0 picks a free port)
    /// running blocking handlers.
    public convenience init(
        host: String, port: Int, mode: ExecutionMode = .pool(threads: 8, queueLimit: 256),
        handler: @escaping @Sendable () -> any DatagramRequestHandler
    ) throws(ServerError) {
        let address = try SocketAddress(resolving: host, port: port)
        try self.init(configuration: ServerConfiguration(address: address, mode: mode), handler: .blocking(handler))
    }

    /// A Unix datagram server on `path` running blocking handlers.
    public convenience init(
        path: String, mode: ExecutionMode = .pool(threads: 8, queueLimit: 256),
        handler: @escaping @Sendable () -> any DatagramRequestHandler
    ) throws(ServerError) {
        let address = try SocketAddress(unixPath: path)
        try self.init(configuration: ServerConfiguration(address: address, mode: mode), handler: .blocking(handler))
    }
}
