import ArgumentParser
import EvServer
import Logging

/// The execution mode as named on the command line; `--threads` and `--queue` complete `pool`.
enum ModeName: String, CaseIterable, ExpressibleByArgument {
    case event, sync, thread, pool

    func executionMode(threads: Int, queue: Int) -> ExecutionMode {
        switch self {
        case .event: return .event
        case .sync: return .sync
        case .thread: return .thread
        case .pool: return .pool(threads: threads, queueLimit: queue)
        }
    }

    static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
