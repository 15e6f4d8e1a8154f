import EvServer
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A swift-log `LogHandler` that writes one JSON object per line: `time` (UTC, ISO 8601 with
/// milliseconds), `level`, `message`, `label`, then the metadata as fields of their own (a metadata key
/// that would replace one of those four is written as `metadata.KEY`). Every string is escaped, so each line
/// parses whatever a message or a value contains (quotes, backslashes, newlines, control characters);
/// other characters are written as UTF-8.
///
/// Lines go to standard error by default, each in one `write(2)` under a process-wide lock, so lines
/// from different threads never interleave.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let output: @Sendable (String) -> Void

    /// A handler for `label`, writing to standard error, or to `output` (one line, with its newline, per
    /// call).
    public init(
        label: String, metadataProvider: Logger.MetadataProvider? = nil,
        output: @escaping @Sendable (String) -> Void = JSONLogHandler.writeToStandardError
    ) {
        self.label = label
        self.metadataProvider = metadataProvider
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = metadata
        if let provided = metadataProvider?.get() { fields.merge(provided) { $1 } }
        if let own = event.metadata { fields.merge(own) { $1 } }
        output(Self.line(time: Self.now(), level: event.level, message: "\(event.message)", label: label, fields))
    }

    /// One JSON object and its newline.
    public static func line(
        time: String, level: Logger.Level, message: String, label: String, _ fields: Logger.Metadata
    ) -> String {
        var line = "{\"time\":\(quoted(time)),\"level\":\(quoted(level.rawValue)),\"message\":\(quoted(message))"
        line += ",\"label\":\(quoted(label))"
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
            let name = ["time", "level", "message", "label"].contains(key) ? "metadata." + key : key
            line += ",\(quoted(name)):\(json(value))"
        }
        return line + "}\n"
    }

    /// A metadata value as JSON: strings as strings, arrays and dictionaries as arrays and objects.
    static func json(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let text): return quoted(text)
        case .stringConvertible(let convertible): return quoted(convertible.description)
        case .array(let values): return "[" + values.map(json).joined(separator: ",") + "]"
        case .dictionary(let entries):
            let members = entries.sorted { $0.key < $1.key }.map { "\(quoted($0.key)):\(json($0.value))" }
            return "{" + members.joined(separator: ",") + "}"
        }
    }

    /// `text` as a JSON string: quotes, backslashes and control characters escaped (RFC 8259).
    public static func quoted(_ text: String) -> String {
        var result = "\""
        result.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }

    /// Now, in UTC: `2026-11-29T12:34:56.789Z`.
    static func now() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let length = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S", &parts)
        let whole = String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let millis = now.tv_nsec / 1_000_000
        return whole + "." + (millis < 10 ? "00" : millis < 100 ? "0" : "") + "\(millis)Z"
    }

    private static let writeLock = Lock(())

    /// Writes `line` to standard error in one call, under a lock.
    public static let writeToStandardError: @Sendable (String) -> Void = { line in
        var line = line
        writeLock.withLock { _ in
            line.withUTF8 { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = write(STDERR_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                    if written < 0 && errno == EINTR { continue }
                    guard written > 0 else { return }
                    offset += written
                }
            }
        }
    }
}
