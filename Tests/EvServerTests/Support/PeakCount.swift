import EvServer
import Synchronization

/// How many handlers run a section at once, and the most that ever did: for tests of thread and pool
/// limits.
final class PeakCount: Sendable {
    private let state = Lock((now: 0, most: 0))

    /// Runs `body`, counted as running while it does.
    func during<Result>(_ body: () throws -> Result) rethrows -> Result {
        state.withLock { $0.now += 1; $0.most = max($0.most, $0.now) }
        defer { state.withLock { $0.now -= 1 } }
        return try body()
    }

    /// The most that ran at once so far.
    var most: Int { state.withLock { $0.most } }
}
