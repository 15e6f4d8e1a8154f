#if canImport(Glibc)
import Glibc
#endif

/// The descriptors blocking handlers are using, so that closing the server can wake a handler stuck in a
/// read (`shutdown(2)` on its socket), and a graceful shutdown's deadline can end their input. Any thread;
/// the set is behind a `Monitor`.
final class BlockingConnections: Sendable {
    private struct State {
        var descriptors: Set<CInt> = []
        /// Set by `shutdownAll(.readAndWrite)`: connections registered later are shut down at once.
        var closing = false
    }

    private let state = Monitor(State())

    /// Registers a handler's socket; shuts it down at once when the server is already closing.
    func register(_ socket: Socket) {
        let closing = state.withLock { state -> Bool in
            state.descriptors.insert(socket.descriptor)
            return state.closing
        }
        if closing { _ = Glibc.shutdown(socket.descriptor, CInt(SHUT_RDWR)) }
    }

    /// Unregisters the socket and runs `close` while no one else can shut it down.
    func unregister(_ descriptor: CInt, close: () -> Void) {
        state.withLock { state in
            state.descriptors.remove(descriptor)
            close()
        }
    }

    /// Unregisters the request's socket and detaches it for `handOff`, unless the server is closing (then
    /// the caller closes it as usual). - Returns: the detached socket and input, or `nil`.
    func unregister(
        _ descriptor: CInt, detaching request: StreamRequest
    ) -> (socket: Socket, unread: [UInt8], inputEnded: Bool)? {
        state.withLock { state in
            guard !state.closing else { return nil }
            state.descriptors.remove(descriptor)
            return request.detach()
        }
    }

    /// What `shutdownAll` ends.
    enum Direction {
        /// Input: handlers read end of input (a drain's deadline).
        case read
        /// Both: every read and write wakes and fails (close).
        case readAndWrite
    }

    /// Shuts down every registered socket in `direction`.
    func shutdownAll(_ direction: Direction) {
        state.withLock { state in
            if direction == .readAndWrite { state.closing = true }
            let how = direction == .read ? CInt(SHUT_RD) : CInt(SHUT_RDWR)
            for descriptor in state.descriptors { _ = Glibc.shutdown(descriptor, how) }
        }
    }
}
