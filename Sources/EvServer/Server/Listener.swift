#if canImport(Glibc)
import Glibc
#endif

/// Opens a server's socket: options, stale Unix socket files, bind, and `listen` for stream sockets.
enum Listener {
    /// Returns a bound non-blocking socket of `type` (`SOCK_STREAM`, listening, or `SOCK_DGRAM`). On any
    /// failure nothing is left open.
    static func open(_ configuration: ServerConfiguration, type: __socket_type) throws(ServerError) -> Socket {
        let address = configuration.address
        let isStream = type == SOCK_STREAM
        let socket: Socket
        do {
            socket = try Socket(family: address.family, type: CInt(type.rawValue))
        } catch {
            throw ServerError.cannotListen(on: address, error)
        }
        do {
            if !address.isUnix {
                // Not on UDP: there SO_REUSEADDR lets a second server bind the same port and steal datagrams.
                if configuration.reuseAddress && isStream {
                    try socket.setOption(level: SOL_SOCKET, name: SO_REUSEADDR, value: 1, what: "SO_REUSEADDR")
                }
                if configuration.reusePort {
                    try socket.setOption(level: SOL_SOCKET, name: SO_REUSEPORT, value: 1, what: "SO_REUSEPORT")
                }
            }
            if address.family == AF_INET6 {
                // Set either way, so the choice does not depend on the net.ipv6.bindv6only sysctl.
                try socket.setOption(
                    level: CInt(IPPROTO_IPV6), name: IPV6_V6ONLY, value: configuration.ipv6Only ? 1 : 0, what: "IPV6_V6ONLY"
                )
            }
            if let path = address.unixPath { try removeStaleSocketFile(at: path, address: address, type: type) }
            try socket.bind(to: address)
            if isStream { try socket.listen(backlog: CInt(clamping: configuration.backlog)) }
            return socket
        } catch let error as SystemError {
            socket.close()
            throw ServerError.cannotListen(on: address, error)
        } catch {
            socket.close()
            throw error as! ServerError
        }
    }

    /// Removes a Unix socket file left by a server that died, but only when no one listens on it: a live
    /// server's file is reported as in use, and a file that is not a socket is never touched.
    private static func removeStaleSocketFile(at path: String, address: SocketAddress, type: __socket_type) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }  // nothing there
        guard (info.st_mode & S_IFMT) == S_IFSOCK else {
            throw ServerError(
                .addressInUse,
                "cannot listen on \(path): the file exists and is not a socket (remove it or choose another path)"
            )
        }
        let probe = try Socket(family: AF_UNIX, type: CInt(type.rawValue))
        defer { probe.close() }
        let result = address.withSockAddr { connect(probe.descriptor, $0, $1) }
        let code = errno
        if result == 0 || code == EAGAIN || code == EINPROGRESS {
            throw ServerError(.addressInUse, "cannot listen on \(path): another server is listening on it", errno: EADDRINUSE)
        }
        if code == ECONNREFUSED {
            unlink(path)
        }
    }

    /// Closes a server's socket and removes its Unix socket file.
    static func close(_ socket: Socket, _ address: SocketAddress) {
        socket.close()
        if let path = address.unixPath { unlink(path) }
    }
}
