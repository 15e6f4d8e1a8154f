import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A datagram server's bound socket, shared by the loop thread (which receives, and sends event-mode
/// replies) and worker threads (which send their handlers' replies), with the counters of what happened.
///
/// `@unchecked Sendable`: concurrent `recvfrom`/`sendto` calls on one datagram socket are safe (the kernel
/// serialises them and never splits a datagram); the descriptor changes only in `close()`, which the
/// engine calls once no loop or worker thread runs any more. The counters are atomic.
final class DatagramSocket: @unchecked Sendable {
    /// How long a blocking handler's reply waits for room in a full send buffer before it is dropped.
    static let blockingSendWait = 2.0

    /// The server's socket: the engine closes it once no thread uses it any more.
    let server: ServerSocket
    let counters: DatagramCounters
    private let logger: Logger
    private let warnedUnaddressable = Atomic<Bool>(false)

    init(_ server: ServerSocket, counters: DatagramCounters, logger: Logger) {
        self.server = server
        socket = server.socket
        isUnix = server.localAddress.isUnix
        self.counters = counters
        self.logger = logger
    }

    /// A Unix datagram socket (its clients may be unnamed; a full client queue drops the reply).
    let isUnix: Bool

    /// `server.socket`, kept here: read for every datagram, and a stored `let` costs no retain to reach.
    let socket: Socket
    var address: SocketAddress { server.localAddress }

    /// Whether `client` can be sent to. A Unix client that did not bind a path has no address: its replies
    /// are counted and dropped, with one notice per server rather than one log line per datagram.
    @inline(__always)
    func canReply(to client: SocketAddress) -> Bool {
        // A UDP server's clients always have an address: one test of a stored `let` per reply.
        guard isUnix, client.unixPath?.isEmpty == true else { return true }
        counters.repliesUnaddressable.increment()
        if !warnedUnaddressable.exchange(true, ordering: .relaxed) {
            logger.notice(
                """
                replies to Unix datagram clients that did not bind a path are dropped (such a client must bind \
                its own socket path to get replies); logged once
                """,
                metadata: ["evserver.listener": "\(address)"]
            )
        }
        return false
    }

    /// Sends one datagram now if the kernel takes it, counting a failure (the caller counts a success: the
    /// loop in its own counter, a worker in the shared one).
    ///
    /// A Unix datagram socket says "would block" when the *client's* receive queue is full, and reports
    /// itself writable all the same, so waiting would spin, and one client that does not read would stall
    /// every other: such a reply is dropped at once, as the kernel drops UDP datagrams a receiver has no
    /// room for.
    /// - Returns: `false` when the UDP send buffer is full (nothing sent, nothing counted).
    /// - Throws: the kernel refused it (peer gone, unreachable, too large, a Unix client's queue full);
    ///   counted as failed.
    @inline(__always)
    func trySend(_ bytes: UnsafeRawBufferPointer, to client: SocketAddress) throws(ConnectionError) -> Bool {
        let sent: Bool
        do {
            sent = try socket.sendDatagram(bytes, to: client)
        } catch {
            counters.repliesFailed.increment()
            throw ConnectionError(systemError: error, client: client)
        }
        if !sent && isUnix {
            counters.repliesFailed.increment()
            throw ConnectionError(
                .replyDropped,
                "reply to \(client) dropped: its receive queue is full (the client is not reading)"
            )
        }
        return sent
    }

    /// Sends one datagram from a blocking handler, waiting up to `blockingSendWait` seconds for room in
    /// the send buffer. Nothing happens for a client that cannot be replied to.
    func sendWaiting(_ bytes: UnsafeRawBufferPointer, to client: SocketAddress) throws(ConnectionError) {
        guard canReply(to: client) else { return }
        let deadline = MonotonicClock.now + DatagramSocket.blockingSendWait
        while try !trySend(bytes, to: client) {
            let remaining = deadline - MonotonicClock.now
            let ready = remaining > 0 ? ((try? socket.poll(events: CInt(POLLOUT), timeout: remaining)) ?? false) : false
            if !ready {
                counters.repliesFailed.increment()
                throw ConnectionError(
                    .replyDropped,
                    """
                    reply to \(client) dropped: the socket's send buffer stayed full for \
                    \(DatagramSocket.blockingSendWait) s
                    """
                )
            }
        }
        counters.repliesSent.increment()
    }
}
