#if canImport(Glibc)
import Glibc
#endif

// Failed system calls as the errors users see, worded for the address involved.

extension ServerError {
    /// Maps a failed `bind`/`listen` to a code and a message that says what to do.
    static func cannotListen(on address: SocketAddress, _ error: SystemError) -> ServerError {
        let prefix = "cannot listen on \(address)"
        switch error.errno {
        case EADDRINUSE:
            return ServerError(
                .addressInUse, "\(prefix): address in use (is another server running on it?)", errno: error.errno
            )
        case EACCES, EPERM:
            let hint = address.isUnix
                ? "the process may not create the socket file there"
                : "ports below 1024 need root or CAP_NET_BIND_SERVICE"
            return ServerError(.permissionDenied, "\(prefix): permission denied (\(hint))", errno: error.errno)
        case EADDRNOTAVAIL:
            return ServerError(
                .addressNotAvailable, "\(prefix): address not available on this machine", errno: error.errno
            )
        case EMFILE, ENFILE, ENOBUFS, ENOMEM:
            return ServerError(
                .resourceExhausted, "\(prefix): \(error.reason) (raise the descriptor limit?)", errno: error.errno
            )
        case ENOENT, ENOTDIR:
            return ServerError(.invalidAddress, "\(prefix): the directory does not exist", errno: error.errno)
        default:
            return ServerError(.systemCallFailed, "\(prefix): \(error)", errno: error.errno)
        }
    }
}

extension ConnectionError {
    init(systemError error: SystemError, client: SocketAddress) {
        switch error.errno {
        case ECONNRESET, EPIPE:
            self.init(.peerClosed, "\(client) closed the connection (\(error.reason))")
        case ECONNREFUSED, ENOENT:
            self.init(.peerClosed, "\(client) is not there any more (\(error.reason))")
        default:
            self.init(.systemCallFailed, "connection to \(client): \(error)")
        }
    }
}
