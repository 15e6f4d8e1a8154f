#if canImport(Glibc)
import Glibc
#endif

/// The connections blocking handlers are serving: so that closing the server can wake a handler stuck in a
/// read (`shutdown(2)` on its socket), a graceful shutdown's deadline can end their input, and `send(_:to:)`
/// and `broadcast` reach them (their ids and topics). Any thread; the state is behind a `Monitor`.
final class BlockingConnections: Sendable {
    private struct Member {
        let request: SharedRequest
        var topics: Set<String> = []
    }

    private struct State {
        var members: [ConnectionID: Member] = [:]
        var nextID: ConnectionID
        /// Set by `shutdownAll(.readAndWrite)`: connections registered later are shut down at once.
        var closing = false
        /// Set by `shutdownAll(.read)`: a graceful shutdown's deadline ended the input of those still open.
        var draining = false
    }

    private let state: Monitor<State>

    /// `firstID`: the first of the member's blocking ids (`ConnectionIDSpace`).
    init(firstID: ConnectionID) {
        state = Monitor(State(nextID: firstID))
    }

    /// Registers a handler's request and gives it its id; shuts its socket down at once when the server is
    /// already closing.
    func register(_ request: StreamRequest) {
        let closing = state.withLock { state -> Bool in
            request.id = state.nextID
            state.nextID = ConnectionIDSpace.next(after: state.nextID)
            state.members[request.id] = Member(request: SharedRequest(request))
            return state.closing
        }
        if closing { _ = Glibc.shutdown(request.socket.descriptor, CInt(SHUT_RDWR)) }
    }

    /// Unregisters the request and runs `close` while no one else can shut it down. - Returns: why the
    /// server ended the connection, if it did (its close, or a drain's deadline), for its summary.
    func unregister(_ request: StreamRequest, close: () -> Void) -> ConnectionSummary.Reason? {
        state.withLock { state in
            state.members[request.id] = nil
            close()
            return state.closing ? .serverClosed : state.draining ? .drain : nil
        }
    }

    /// Unregisters the request and detaches its socket for `handOff`, unless the server is closing (then the
    /// caller closes it as usual). - Returns: the detached socket and input, or `nil`.
    func unregister(detaching request: StreamRequest) -> (socket: Socket, unread: [UInt8], inputEnded: Bool)? {
        state.withLock { state in
            guard !state.closing else { return nil }
            state.members[request.id] = nil
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
            if direction == .readAndWrite { state.closing = true } else { state.draining = true }
            let how = direction == .read ? CInt(SHUT_RD) : CInt(SHUT_RDWR)
            for member in state.members.values { _ = Glibc.shutdown(member.request.value.socket.descriptor, how) }
        }
    }

    // MARK: Registry

    func join(_ id: ConnectionID, topic: String) { state.withLock { $0.members[id]?.topics.insert(topic) } }

    func leave(_ id: ConnectionID, topic: String) { state.withLock { $0.members[id]?.topics.remove(topic) } }

    /// Writes `bytes` to connection `id` on the calling thread (see `StreamRequest.deliver`); nothing when
    /// it has closed.
    func send(_ bytes: [UInt8], to id: ConnectionID) {
        guard let request = state.withLock({ $0.members[id]?.request }) else { return }
        _ = request.value.deliver(bytes)
    }

    /// Writes `bytes` to every connection, or those in `topic`, except `except`, on the calling thread.
    func broadcast(_ bytes: [UInt8], topic: String?, except: ConnectionID?) {
        let targets = state.withLock { state in
            state.members.filter { id, member in id != except && (topic.map { member.topics.contains($0) } ?? true) }
                .map(\.value.request)
        }
        for target in targets { _ = target.value.deliver(bytes) }
    }
}

/// A blocking handler's request as the registry holds it.
///
/// `@unchecked Sendable`: other threads use only `deliver` (behind the request's write lock), `socket`'s
/// descriptor (for `shutdown(2)`, safe on a descriptor in use) and `id` (set before it is shared).
struct SharedRequest: @unchecked Sendable {
    let value: StreamRequest
    init(_ value: StreamRequest) { self.value = value }
}
