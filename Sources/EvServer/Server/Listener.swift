#if canImport(Glibc)
import Glibc
#endif

/// Opens a server's listening socket: options, stale Unix socket files, bind, listen.
enum Listener {
    /// Returns a bound, listening, non-blocking socket. On any failure nothing is left open.
    static func open(_ configuration: ServerConfiguration) throws(ServerError) -> Socket {
        let address = configuration.address
        let socket: Socket
        do {
            socket = try Socket(family: address.family, type: CInt(SOCK_STREAM.rawValue))
        } catch {
            throw ServerError.cannotListen(on: address, error)
        }
        do {
            if !address.isUnix {
                if configuration.reuseAddress {
                    try socket.setOption(level: SOL_SOCKET, name: SO_REUSEADDR, value: 1, what: "SO_REUSEADDR")
                }
                if configuration.reusePort {
                    try socket.setOption(level: SOL_SOCKET, name: SO_REUSEPORT, value: 1, what: "SO_REUSEPORT")
                }
            }
            if let path = address.unixPath { try removeStaleSocketFile(at: path, address: address) }
            try socket.bind(to: address)
            try socket.listen(backlog: CInt(clamping: configuration.backlog))
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
    private static func removeStaleSocketFile(at path: String, address: SocketAddress) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }  // nothing there
        guard (info.st_mode & S_IFMT) == S_IFSOCK else {
            throw ServerError(
                .addressInUse,
                "cannot listen on \(path): the file exists and is not a socket (remove it or choose another path)"
            )
        }
        let probe = try Socket(family: AF_UNIX, type: CInt(SOCK_STREAM.rawValue))
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
}
