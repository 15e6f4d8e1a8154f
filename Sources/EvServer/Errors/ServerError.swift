#if canImport(Glibc)
import Glibc
#endif

/// Why a server could not be created, bound or run. The message names what failed and what to do.
///
/// Compare errors by `code`; the message is for people.
public struct ServerError: Error, CustomStringConvertible, Sendable {
    /// The kind of failure, stable across versions (extensible: new codes may be added).
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let description: String
        private init(_ name: String) { description = name }

        /// Another socket is bound to the address.
        public static let addressInUse = Code("addressInUse")
        /// The process may not bind the address (a privileged port, a directory it cannot write).
        public static let permissionDenied = Code("permissionDenied")
        /// The address is not one of this machine's.
        public static let addressNotAvailable = Code("addressNotAvailable")
        /// The address text could not be parsed or is out of range.
        public static let invalidAddress = Code("invalidAddress")
        /// A Unix socket path longer than the kernel's `sun_path` allows.
        public static let unixPathTooLong = Code("unixPathTooLong")
        /// Out of descriptors, memory or threads.
        public static let resourceExhausted = Code("resourceExhausted")
        /// The configuration contradicts itself (for example a blocking handler with the event mode).
        public static let invalidConfiguration = Code("invalidConfiguration")
        /// `serveForever` or `handleRequest` was called while the server already serves.
        public static let alreadyServing = Code("alreadyServing")
        /// The server was closed.
        public static let closed = Code("closed")
        /// Any other failure of a system call.
        public static let systemCallFailed = Code("systemCallFailed")
    }

    public let code: Code
    public let message: String
    /// The `errno` behind the failure, when a system call failed.
    public let errno: CInt?

    public init(_ code: Code, _ message: String, errno: CInt? = nil) {
        self.code = code
        self.message = message
        self.errno = errno
    }

    public var description: String { message }

    /// Maps a failed `bind`/`listen` to a code and a message that says what to do.
    static func cannotListen(on address: SocketAddress, _ error: SystemError) -> ServerError {
        let prefix = "cannot listen on \(address)"
        switch error.errno {
        case EADDRINUSE:
            return ServerError(.addressInUse, "\(prefix): address in use (is another server running on it?)", errno: error.errno)
        case EACCES, EPERM:
            let hint = address.isUnix
                ? "the process may not create the socket file there"
                : "ports below 1024 need root or CAP_NET_BIND_SERVICE"
            return ServerError(.permissionDenied, "\(prefix): permission denied (\(hint))", errno: error.errno)
        case EADDRNOTAVAIL:
            return ServerError(.addressNotAvailable, "\(prefix): address not available on this machine", errno: error.errno)
        case EMFILE, ENFILE, ENOBUFS, ENOMEM:
            return ServerError(.resourceExhausted, "\(prefix): \(error.reason) (raise the descriptor limit?)", errno: error.errno)
        case ENOENT, ENOTDIR:
            return ServerError(.invalidAddress, "\(prefix): the directory does not exist", errno: error.errno)
        default:
            return ServerError(.systemCallFailed, "\(prefix): \(error)", errno: error.errno)
        }
    }
}

/// A failed system call: which one, and `errno` (captured at once, before anything can overwrite it).
struct SystemError: Error, CustomStringConvertible {
    let operation: String
    let errno: CInt

    var reason: String { String(cString: strerror(errno)) }
    var description: String { "\(operation) failed: \(reason) (errno \(errno))" }
}
