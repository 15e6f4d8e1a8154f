/// A TCP server (IPv4 or IPv6, chosen by the address). The same type as `StreamServer`.
public typealias TCPServer = StreamServer
/// A Unix stream socket server. The same type as `StreamServer`.
public typealias UnixStreamServer = StreamServer

extension StreamServer {
    /// A TCP server on `host:port` (a numeric address or a name, resolved now; port 0 picks a free port)
    /// running blocking handlers.
    public convenience init(
        host: String, port: Int, mode: ExecutionMode = .thread,
        handler: @escaping @Sendable () -> any StreamRequestHandler
    ) throws(ServerError) {
        let address = try SocketAddress(resolving: host, port: port)
        try self.init(configuration: ServerConfiguration(address: address, mode: mode), handler: .blocking(handler))
    }

    /// A Unix stream socket server on `path` running blocking handlers.
    public convenience init(
        path: String, mode: ExecutionMode = .thread,
        handler: @escaping @Sendable () -> any StreamRequestHandler
    ) throws(ServerError) {
        let address = try SocketAddress(unixPath: path)
        try self.init(configuration: ServerConfiguration(address: address, mode: mode), handler: .blocking(handler))
    }
}
