#if canImport(Glibc)
import Glibc
#endif

/// Why a server could not be created, bound or run. The message names what failed and what to do.
///
/// Compare errors by `code`; the message is for people.
public struct ServerError: Error, CustomStringConvertible, Sendable {
    /// The kind of failure, stable across versions (extensible: new codes may be added).
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's name (`addressInUse`).
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

    /// What kind of failure: compare this, not the message.
    public let code: Code
    /// What failed and what to do, for people.
    public let message: String
    /// The `errno` behind the failure, when a system call failed.
    public let errno: CInt?

    /// An error of `code` with a message that says what failed and what to do.
    public init(_ code: Code, _ message: String, errno: CInt? = nil) {
        self.code = code
        self.message = message
        self.errno = errno
    }

    /// The message.
    public var description: String { message }
}
