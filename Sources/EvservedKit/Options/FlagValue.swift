import EvServer

#if canImport(Glibc)
import Glibc
#endif

/// Readers of evserved's flag values: each refuses what the daemon cannot use (a non-finite, negative or
/// absurd number, an unknown name) with a `FlagValueError` that names the flag, the value and the range.
///
/// Every flag value goes through here (the daemon's `transform:` closures), so every bad value is refused
/// the same way: one line on standard error and exit status 1.
public enum FlagValue {
    /// The longest duration any flag accepts: one year, in seconds. Longer ones are typos, and would
    /// overflow the conversions to whole seconds or nanoseconds that timers and deadlines make.
    public static let longestDuration = ServerConfiguration.longestDuration
    /// The most connections (or tokens) per second a rate flag accepts.
    public static let highestRate: Double = 1_000_000_000
    /// `--send-buffer`: the kernel's send buffer per connection, in bytes.
    public static let sendBufferRange = ServerConfiguration.sendBufferRange

    /// Seconds, finite, from 0 (only when `allowZero`) or more than 0, up to `longestDuration`.
    public static func duration(
        _ text: String, flag: String, allowZero: Bool = false
    ) throws(FlagValueError) -> Double {
        let range = allowZero
            ? "0 to \(Int(longestDuration)) (one year)"
            : "more than 0 and at most \(Int(longestDuration)) (one year)"
        guard let value = Double(text), value.isFinite else {
            throw FlagValueError(flag, text, "not a finite number of seconds: use \(range)")
        }
        guard allowZero ? value >= 0 : value > 0 else { throw FlagValueError(flag, text, "out of range: use \(range)") }
        guard value <= longestDuration else { throw FlagValueError(flag, text, "longer than a year: use \(range)") }
        return value
    }

    /// Per second, finite, more than 0 and at most `highestRate`.
    public static func rate(_ text: String, flag: String) throws(FlagValueError) -> Double {
        let range = "more than 0 and at most \(Int(highestRate)) per second"
        guard let value = Double(text), value.isFinite else {
            throw FlagValueError(flag, text, "not a finite number: use \(range)")
        }
        guard value > 0, value <= highestRate else { throw FlagValueError(flag, text, "out of range: use \(range)") }
        return value
    }

    /// A whole number within `range`.
    public static func integer(_ text: String, flag: String, in range: ClosedRange<Int>) throws(FlagValueError) -> Int {
        let allowed = range.upperBound == Int.max
            ? "\(range.lowerBound) or more"
            : "\(range.lowerBound) to \(range.upperBound)"
        guard let value = Int(text) else { throw FlagValueError(flag, text, "not a whole number: use \(allowed)") }
        guard range.contains(value) else { throw FlagValueError(flag, text, "out of range: use \(allowed)") }
        return value
    }

    /// A path of a file the daemon will write: not empty, in a directory that exists and it may write to.
    public static func writablePath(_ text: String, flag: String) throws(FlagValueError) -> String {
        guard !text.isEmpty else { throw FlagValueError(flag, text, "empty: give a file path") }
        let directory = text.contains("/") ? String(text[..<text.lastIndex(of: "/")!]) : "."
        guard access(directory.isEmpty ? "/" : directory, W_OK) == 0 else {
            throw FlagValueError(flag, text, "the directory \(directory) does not exist or is not writable")
        }
        return text
    }

    /// A CIDR range (`10.0.0.0/8`, `::1/128`).
    public static func range(_ text: String, flag: String) throws(FlagValueError) -> AddressRange {
        do {
            return try AddressRange(parsing: text)
        } catch {
            // The library's message starts with the value; the line names it once.
            let quoted = "'\(text)': "
            let problem = error.message.hasPrefix(quoted)
                ? String(error.message.dropFirst(quoted.count))
                : error.message
            throw FlagValueError(flag, text, problem)
        }
    }

    /// One of a fixed set of names.
    public static func choice<Value: RawRepresentable & CaseIterable>(
        _ text: String, flag: String, as type: Value.Type = Value.self
    ) throws(FlagValueError) -> Value where Value.RawValue == String {
        guard let value = Value(rawValue: text) else {
            let names = Value.allCases.map(\.rawValue).joined(separator: ", ")
            throw FlagValueError(flag, text, "unknown name: use one of \(names)")
        }
        return value
    }
}

/// A flag value the daemon refuses, in one line: `invalid --FLAG 'VALUE': what is wrong: what to use`.
/// Also any other problem with the values given (a missing `--listen`, flags that contradict each other).
public struct FlagValueError: Error, CustomStringConvertible, Sendable {
    public let description: String

    public init(_ flag: String, _ value: String, _ problem: String) {
        description = "invalid \(flag) '\(value)': \(problem)"
    }

    /// A problem that is not one flag's value.
    public init(_ description: String) {
        self.description = description
    }
}
