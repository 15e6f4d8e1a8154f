import EvServer
import EvservedKit

/// `FlagValue`'s readers with the flag's name bound: an `@Option`'s `transform:` in one expression
/// (`transform: FlagValue.integer(flag: "--threads", in: 1...64)`), so a bad value is refused the one way
/// `FlagValue` refuses it (`invalid --threads 'x': not a whole number: use 1 to 64`).
extension FlagValue {
    /// A whole number within `range`.
    static func integer(flag: String, in range: ClosedRange<Int>) -> @Sendable (String) throws -> Int {
        { text in try integer(text, flag: flag, in: range) }
    }

    /// Seconds: more than 0 (or 0 too, with `allowZero`), at most a year.
    static func duration(flag: String, allowZero: Bool = false) -> @Sendable (String) throws -> Double {
        { text in try duration(text, flag: flag, allowZero: allowZero) }
    }

    /// Per second: more than 0.
    static func rate(flag: String) -> @Sendable (String) throws -> Double {
        { text in try rate(text, flag: flag) }
    }

    /// A CIDR range.
    static func range(flag: String) -> @Sendable (String) throws -> AddressRange {
        { text in try range(text, flag: flag) }
    }

    /// One of `Value`'s names.
    static func choice<Value: RawRepresentable & CaseIterable & SendableMetatype>(
        flag: String
    ) -> @Sendable (String) throws -> Value where Value.RawValue == String {
        { text in try choice(text, flag: flag) }
    }

    /// A TCP address (`tcp://HOST:PORT`).
    static func tcpAddress(flag: String) -> @Sendable (String) throws -> SocketAddress {
        { text in try tcpAddress(text, flag: flag) }
    }

    /// A file path in a writable directory.
    static func writablePath(flag: String) -> @Sendable (String) throws -> String {
        { text in try writablePath(text, flag: flag) }
    }
}
