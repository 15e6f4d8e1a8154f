import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A connection taken out of the server's hands with `StreamConnection.detach()`, which still holds its
/// place in the connection limits: `maximumConnections` and `maximumConnectionsPerClient` count it, and a
/// graceful shutdown waits for it (until its deadline), until `release()`.
///
/// For a connection served elsewhere, such as by a child process (evserved's `--exec`): give the
/// descriptor away, and call `release()` when that work is over, from any thread.
///
/// Sendable: the descriptor and addresses never change, and the slot is released once (atomically).
public final class DetachedConnection: Sendable {
    /// The connection's socket, still in non-blocking mode; yours to use and close (the server forgot it).
    public let descriptor: CInt
    /// The client's address.
    public let clientAddress: SocketAddress
    /// The server's address on this connection (`getsockname`), `nil` when the system cannot tell.
    public let localAddress: SocketAddress?
    /// The id the connection had.
    public let id: ConnectionID
    private let limits: ConnectionLimits
    private let released = Atomic(false)

    init(descriptor: CInt, clientAddress: SocketAddress, id: ConnectionID, limits: ConnectionLimits) {
        self.descriptor = descriptor
        self.clientAddress = clientAddress
        self.id = id
        self.limits = limits
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        localAddress = named == 0 ? SocketAddress(storage: &storage, length: length) : nil
    }

    /// Frees the connection's place in the limits (a server paused at `maximumConnections` accepts again).
    /// Any thread; only the first call counts. It does not close the descriptor.
    public func release() {
        guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        limits.releaseAndNotify(clientAddress)
    }

    /// A detached connection nobody released frees its place when it goes.
    deinit { release() }
}

extension StreamConnection {
    /// Takes the connection out of the server's hands: reading, writing and every timer stop, the server
    /// forgets it (no `send`, `broadcast`, drain or close reaches it, and the handler hears nothing more,
    /// not even `connectionClosed`), and the socket is yours, still open, with its place in the
    /// connection limits until `DetachedConnection.release()`. Bytes still queued for the client are
    /// dropped: detach before writing, or once `bufferedByteCount` is 0.
    ///
    /// - Returns: `nil` when the connection had already closed.
    public func detach() -> DetachedConnection? {
        guard finish(error: nil, detaching: true) else { return nil }
        let detached = DetachedConnection(
            descriptor: socket.take(), clientAddress: clientAddress, id: id, limits: server.limits
        )
        owner._withUnsafeGuaranteedRef { $0.connectionDidDetach(self, tally: tally) }
        return detached
    }
}
