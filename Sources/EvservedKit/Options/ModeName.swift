import EvServer

/// The execution mode as named on the command line; `--threads` and `--queue` complete `pool`.
public enum ModeName: String, CaseIterable, Sendable {
    case event, sync, thread, pool, async

    /// The library's execution mode this name stands for.
    public func executionMode(threads: Int, queue: Int) -> ExecutionMode {
        switch self {
        case .event: return .event
        case .sync: return .sync
        case .thread: return .thread
        case .pool: return .pool(threads: threads, queueLimit: queue)
        case .async: return .async
        }
    }

    /// Every name, comma-separated, for help texts and error messages.
    public static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }
}
