/// Why a read or write on a client connection failed. Blocking handlers see these thrown from
/// `StreamRequest`'s reads and writes; event handlers get them in `connectionClosed(_:error:)`.
public struct ConnectionError: Error, CustomStringConvertible, Sendable, Equatable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let description: String
        private init(_ name: String) { description = name }

        /// Nothing was received or sent for the idle timeout.
        public static let timedOut = Code("timedOut")
        /// The client reset the connection or stopped reading (`ECONNRESET`, `EPIPE`).
        public static let peerClosed = Code("peerClosed")
        /// A line grew past the limit the reader was given.
        public static let lineTooLong = Code("lineTooLong")
        /// The connection was already closed on this side (for example by the server's shutdown).
        public static let closed = Code("closed")
        /// Any other failure of a system call.
        public static let systemCallFailed = Code("systemCallFailed")
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    public static func == (lhs: ConnectionError, rhs: ConnectionError) -> Bool { lhs.code == rhs.code }
}
