import EvServer
import Logging
import Synchronization

/// A log handler that keeps what it is given, for tests of what a server logs. `@unchecked Sendable`: its
/// entries are behind a `Lock` (a pthread mutex ThreadSanitizer sees); `metadata` and `logLevel` are set before the logger is shared.
final class CapturingLogHandler: LogHandler, @unchecked Sendable {
    struct Entry { let level: Logger.Level; let message: String; let metadata: Logger.Metadata }
    let entries = Lock<[Entry]>([])
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        let entry = Entry(level: event.level, message: "\(event.message)", metadata: event.metadata ?? [:])
        entries.withLock { $0.append(entry) }
    }
}
