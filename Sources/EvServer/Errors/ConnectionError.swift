#if canImport(Glibc)
import Glibc
#endif

/// Why a read or write on a client connection failed. Blocking handlers see these thrown from
/// `StreamRequest`'s reads and writes (and `DatagramRequest`'s replies); event handlers get them in
/// `connectionClosed(_:error:)`.
public struct ConnectionError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The kind of failure, stable across versions (extensible: new codes may be added).
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's name (`timedOut`).
        public let description: String
        private init(_ name: String) { description = name }

        /// A timeout ran out: the idle, read or write timeout, or the connection's maximum lifetime.
        public static let timedOut = Code("timedOut")
        /// The client reset the connection or stopped reading (`ECONNRESET`, `EPIPE`); for datagrams, no
        /// socket is there any more at the client's address (`ECONNREFUSED`, `ENOENT`).
        public static let peerClosed = Code("peerClosed")
        /// A line grew past the limit the reader was given.
        public static let lineTooLong = Code("lineTooLong")
        /// More input waited to be read than the reader's buffer may hold (`maximumInputBuffer`).
        public static let inputTooLarge = Code("inputTooLarge")
        /// A datagram reply was dropped: the client's receive queue or the server's send buffer stayed full.
        public static let replyDropped = Code("replyDropped")
        /// The connection was already closed on this side (for example by the server's shutdown).
        public static let closed = Code("closed")
        /// Any other failure of a system call.
        public static let systemCallFailed = Code("systemCallFailed")
    }

    /// What kind of failure: compare this, not the message.
    public let code: Code
    /// What failed, naming the client, for people.
    public let message: String

    /// An error of `code` with a message naming what failed.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The message.
    public var description: String { message }

    /// Errors are equal when their codes are: messages vary with the client.
    public static func == (lhs: ConnectionError, rhs: ConnectionError) -> Bool { lhs.code == rhs.code }
}
