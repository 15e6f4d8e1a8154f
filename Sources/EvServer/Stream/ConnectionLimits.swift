/// Counts a stream server's open connections, in every mode, and applies the connection limits: at most
/// `maximumConnections` in all (the core stops accepting at the limit) and `maximumConnectionsPerClient`
/// from one IP address (more are closed at once). Also what a graceful shutdown waits on.
///
/// The servers of a group (`ServerGroup.streamServers`) share one: the limits hold for the group, and a
/// connection that closes on one loop lets every member that paused at the limit accept again.
///
/// Used from the loop thread (admit, and release for event connections) and from worker threads (release
/// for blocking handlers); the state is behind a `Monitor`.
final class ConnectionLimits: Sendable {
    private struct State {
        var open = 0
        var perClient: [String: Int] = [:]
    }

    let maximumConnections: Int?
    let maximumPerClient: Int?
    private let state = Monitor(State())
    /// What each member server does when a slot frees after the limit was reached (keyed by server).
    private let members = Monitor<[ObjectIdentifier: @Sendable () -> Void]>([:])

    init(maximumConnections: Int?, maximumPerClient: Int?) {
        self.maximumConnections = maximumConnections
        self.maximumPerClient = maximumPerClient
    }

    /// Counts a new connection from `client`, unless that client already has `maximumPerClient` open.
    func admit(_ client: SocketAddress) -> Bool {
        state.withLock { state in
            guard countPerClient(client, in: &state) else { return false }
            state.open += 1
            return true
        }
    }

    /// Counts a connection whose client is not known yet (its PROXY header is awaited): it takes one of
    /// `maximumConnections` now; `admitReserved` or `releaseReservation` follows.
    func reserve() {
        state.withLock { $0.open += 1 }
    }

    /// The client of a reserved connection is known: applies `maximumPerClient`. On `false` the caller
    /// releases the reservation.
    func admitReserved(_ client: SocketAddress) -> Bool {
        state.withLock { countPerClient(client, in: &$0) }
    }

    /// A reserved connection closed before it was admitted.
    func releaseReservation() {
        let wasFull = state.withLock { state in
            defer { state.open -= 1 }
            return state.open == maximumConnections
        }
        if wasFull { notifySlotFreed() }
    }

    private func countPerClient(_ client: SocketAddress, in state: inout State) -> Bool {
        if let limit = maximumPerClient, let host = client.host {
            let current = state.perClient[host, default: 0]
            guard current < limit else { return false }
            state.perClient[host] = current + 1
        }
        return true
    }

    /// Counts a connection's end. - Returns: whether the server was at `maximumConnections` before it.
    func release(_ client: SocketAddress) -> Bool {
        state.withLock { state in
            if maximumPerClient != nil, let host = client.host {
                let remaining = state.perClient[host, default: 1] - 1
                state.perClient[host] = remaining > 0 ? remaining : nil
            }
            defer { state.open -= 1 }
            return state.open == maximumConnections
        }
    }

    /// Registers `server`'s reaction to a freed slot (it runs on any thread: hop to the loop).
    func join(_ server: AnyObject, onSlotFreed: @escaping @Sendable () -> Void) {
        members.withLock { $0[ObjectIdentifier(server)] = onSlotFreed }
    }

    /// Unregisters the server `member` (its `ObjectIdentifier`); called when it starts closing, before its
    /// loop goes.
    func leave(_ member: ObjectIdentifier) {
        _ = members.withLock { $0.removeValue(forKey: member) }
    }

    /// Counts a connection's end; when the limit had been reached, tells every member.
    func releaseAndNotify(_ client: SocketAddress) {
        if release(client) { notifySlotFreed() }
    }

    private func notifySlotFreed() {
        members.withLock { members in for onSlotFreed in members.values { onSlotFreed() } }
    }

    var openCount: Int { state.withLock { $0.open } }

    /// Whether the server is at `maximumConnections`.
    var isFull: Bool {
        guard let maximumConnections else { return false }
        return openCount >= maximumConnections
    }

    /// Waits until no connection is open, at most `timeout` seconds. - Returns: `false` on timeout.
    func waitUntilNoneOpen(timeout: Double) -> Bool {
        state.wait(until: { $0.open == 0 }, timeout: timeout, then: { _ in }) != nil
    }
}
