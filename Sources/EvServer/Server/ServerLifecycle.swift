/// Where a server is in its life — idle, serving a session (`serveForever`, `start`, `handleRequest`) or
/// closed — shared by the threads that start, stop, wait for and close it.
///
/// ```
/// idle --begin--> serving --sessionEnded--> idle
///   \                \
///    `---------------`--markClosed--> closed
/// ```
/// `shutdown()` while idle is remembered: the next `serveForever()` returns at once. Any thread; the state
/// is behind a `Monitor`.
final class ServerLifecycle: Sendable {
    private enum Phase { case idle, serving, closed }

    private struct State {
        var phase = Phase.idle
        /// `shutdown()` came while idle.
        var shutdownRequested = false
        var sessionsStarted = 0
        var sessionsEnded = 0
        var lastSessionTimedOut = false
        /// `close()` has begun.
        var closing = false
        /// `close()` has finished.
        var closed = false
        /// Tasks waiting for `close()` to finish (`waitUntilClosed`).
        var closeWaiters: [CheckedContinuation<Void, Never>] = []
    }

    /// For messages: the address the server is bound to.
    private let address: SocketAddress
    private let state = Monitor(State())

    init(address: SocketAddress) { self.address = address }

    /// Begins a session. - Returns: its number, or `nil` when a `shutdown()` that came while idle ends it
    /// before it starts (`consumingShutdown`: `serveForever` and `start`, not `handleRequest`).
    func begin(consumingShutdown: Bool) throws(ServerError) -> Int? {
        let outcome: Result<Int?, ServerError> = state.withLock { state in
            switch state.phase {
            case .closed: return .failure(ServerError(.closed, "the server on \(address) is closed"))
            case .serving: return .failure(ServerError(.alreadyServing, "the server on \(address) is already serving"))
            case .idle: break
            }
            if consumingShutdown && state.shutdownRequested {
                state.shutdownRequested = false
                return .success(nil)
            }
            state.phase = .serving
            state.sessionsStarted += 1
            return .success(state.sessionsStarted)
        }
        return try outcome.get()
    }

    /// `shutdown()`: the session to stop, or `nil` when none serves (remembered if idle).
    func requestShutdown() -> Int? {
        state.withLock { state in
            switch state.phase {
            case .serving: return state.sessionsStarted
            case .idle:
                state.shutdownRequested = true
                return nil
            case .closed: return nil
            }
        }
    }

    /// Called on the loop thread when a session ends.
    func sessionEnded(timedOut: Bool) {
        state.withLock { state in
            if state.phase == .serving { state.phase = .idle }
            state.sessionsEnded = state.sessionsStarted
            state.lastSessionTimedOut = timedOut
            state.shutdownRequested = false
        }
    }

    /// Blocks until session `number` has ended or the server closed. - Returns: whether it timed out.
    @discardableResult
    func waitForEnd(of number: Int) -> Bool {
        state.wait(until: { $0.sessionsEnded >= number || $0.phase == .closed }) { $0.lastSessionTimedOut } ?? false
    }

    /// Marks the start of `close()`. - Returns: `true` for the first caller only.
    func beginClosing() -> Bool {
        state.withLock { state -> Bool in
            defer { state.closing = true }
            return !state.closing
        }
    }

    /// No session may begin any more; waiters are released.
    func markClosed() { state.withLock { $0.phase = .closed } }

    /// True once `close()` has begun.
    var isClosing: Bool { state.withLock { $0.closing } }

    /// `close()` has finished: the server holds nothing any more. Resumes `waitUntilClosed`.
    func markFinished() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.closed = true
            defer { state.closeWaiters.removeAll() }
            return state.closeWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Suspends until `close()` has finished (at once if it has).
    func waitUntilClosed() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let closed = state.withLock { state -> Bool in
                if !state.closed { state.closeWaiters.append(waiter) }
                return state.closed
            }
            if closed { waiter.resume() }
        }
    }
}
