import EvServer
import Synchronization

/// Collects the summaries a server reports.
final class Summaries: Sendable {
    private let all = Lock<[ConnectionSummary]>([])
    var hooks: ServerHooks {
        ServerHooks(connectionClosed: { summary in self.all.withLock { $0.append(summary) } })
    }
    var list: [ConnectionSummary] { all.withLock { $0 } }

    /// Waits for `count` summaries, then returns them.
    func wait(for count: Int) -> [ConnectionSummary] {
        _ = waitUntil { list.count >= count }
        return list
    }
}
