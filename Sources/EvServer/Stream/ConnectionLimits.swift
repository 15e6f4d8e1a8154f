import Synchronization

/// Counts a stream server's open connections, in every mode, and applies the connection limits: at most
/// `maximumConnections` in all (the core stops accepting at the limit) and `maximumConnectionsPerClient`
/// from one IP address (more are closed at once). Also what a graceful shutdown waits on.
///
/// The servers of a group (`ServerGroup.streamServers`) share one: the limits hold for the group, and a
/// connection that closes on one loop lets every member that paused at the limit accept again.
///
/// Used from the loop thread (admit, and release for event connections) and from worker threads (release
/// for blocking handlers). The open count is an atomic: it is read before every accept and changed twice
/// per connection, and a mutex there cost ~350 instructions a connection (five lock, broadcast and unlock
/// rounds). The per-client counts are behind a `Monitor`, taken only when `maximumPerClient` is set; the
/// same monitor is where `waitUntilNoneOpen` sleeps, woken by the release that brings the count to 0.
final class ConnectionLimits: Sendable {
    let maximumConnections: Int?
    let maximumPerClient: Int?
    private let open = Atomic<Int>(0)
    /// Threads in `waitUntilNoneOpen`: the release that brings `open` to 0 takes the monitor to wake them
    /// only when there are some (with one client at a time, every close did, ~60 instructions).
    private let waiters = Atomic<Int>(0)
    /// Open connections per client host (only with `maximumPerClient`); and the waiters' condition.
    private let perClient = Monitor<[String: Int]>([:])
    /// What each member server does when a slot frees after the limit was reached (keyed by server).
    private let members = Monitor<[ObjectIdentifier: @Sendable () -> Void]>([:])

    init(maximumConnections: Int?, maximumPerClient: Int?) {
        self.maximumConnections = maximumConnections
        self.maximumPerClient = maximumPerClient
    }

    /// Counts a new connection from `client`, unless that client already has `maximumPerClient` open.
    func admit(_ client: SocketAddress) -> Bool {
        if maximumPerClient != nil, !countPerClient(client) { return false }
        open.wrappingAdd(1, ordering: .relaxed)
        return true
    }

    /// Counts a connection whose client is not known yet (its PROXY header is awaited): it takes one of
    /// `maximumConnections` now; `admitReserved` or `releaseReservation` follows.
    func reserve() {
        open.wrappingAdd(1, ordering: .relaxed)
    }

    /// The client of a reserved connection is known: applies `maximumPerClient`. On `false` the caller
    /// releases the reservation.
    func admitReserved(_ client: SocketAddress) -> Bool {
        countPerClient(client)
    }

    /// A reserved connection closed before it was admitted.
    func releaseReservation() {
        if releaseSlot() { notifySlotFreed() }
    }

    private func countPerClient(_ client: SocketAddress) -> Bool {
        guard let limit = maximumPerClient, let host = client.host else { return true }
        return perClient.withLock { perClient in
            let current = perClient[host, default: 0]
            guard current < limit else { return false }
            perClient[host] = current + 1
            return true
        }
    }

    /// Counts a connection's end. - Returns: whether the server was at `maximumConnections` before it.
    func release(_ client: SocketAddress) -> Bool {
        if maximumPerClient != nil, let host = client.host {
            perClient.withLock { perClient in
                let remaining = perClient[host, default: 1] - 1
                perClient[host] = remaining > 0 ? remaining : nil
            }
        }
        return releaseSlot()
    }

    /// One fewer open; the last one wakes `waitUntilNoneOpen` (its lock orders the wake after the waiter's
    /// check). - Returns: whether the count was at `maximumConnections` before.
    private func releaseSlot() -> Bool {
        // Sequentially consistent, as `waitUntilNoneOpen`'s: it sees open at 0, or this sees it waiting.
        let before = open.wrappingSubtract(1, ordering: .sequentiallyConsistent).oldValue
        if before == 1, waiters.load(ordering: .sequentiallyConsistent) > 0 { perClient.withLock { _ in } }
        return before == maximumConnections
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

    var openCount: Int { open.load(ordering: .relaxed) }

    /// Whether a thread waits in `waitUntilNoneOpen` (for tests).
    var hasWaiters: Bool { waiters.load(ordering: .sequentiallyConsistent) > 0 }

    /// Whether the server is at `maximumConnections`.
    var isFull: Bool {
        guard let maximumConnections else { return false }
        return openCount >= maximumConnections
    }

    /// Waits until no connection is open, at most `timeout` seconds. - Returns: `false` on timeout.
    func waitUntilNoneOpen(timeout: Double) -> Bool {
        waiters.wrappingAdd(1, ordering: .sequentiallyConsistent)
        defer { waiters.wrappingSubtract(1, ordering: .sequentiallyConsistent) }
        let noneOpen = { (_: [String: Int]) in self.open.load(ordering: .sequentiallyConsistent) == 0 }
        return perClient.wait(until: noneOpen, timeout: timeout, then: { _ in }) != nil
    }
}
