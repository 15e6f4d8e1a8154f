/// Where a `RedisBackplane` connects, from `redis://HOST:PORT[/PREFIX]`: `HOST` a name, an IPv4 address or
/// an IPv6 one in brackets; `PORT` 1 to 65535 (6379 when left out); `PREFIX` (default `evserver`) starts
/// every channel name, so that several applications can share one Redis: letters, digits, `.`, `_` and `-`,
/// at most 64 (no glob characters: the backplane subscribes to the pattern `PREFIX:t:*`).
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    /// The server's host name or address (an IPv6 address without its brackets).
    public var host: String
    /// The server's TCP port.
    public var port: Int
    /// What every channel name starts with (`PREFIX:t:TOPIC`, ...).
    public var prefix: String

    /// The prefix when the URL has none.
    public static let defaultPrefix = "evserver"

    /// A URL from its parts, already checked (`init(parsing:)` checks a text).
    public init(host: String, port: Int, prefix: String = RedisURL.defaultPrefix) {
        self.host = host
        self.port = port
        self.prefix = prefix
    }

    /// Parses `text`; the error says which part is wrong and what to write.
    public init(parsing text: String) throws(RedisURLError) {
        let form = "use redis://HOST:PORT[/PREFIX], for example redis://127.0.0.1:6379/chat"
        guard text.hasPrefix("redis://") else { throw RedisURLError("'\(text)' is not a redis:// URL: \(form)") }
        let rest = text.dropFirst("redis://".count)
        let authority = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(authority.count).dropFirst()
        (host, port) = try Self.hostAndPort(authority, in: text, form: form)
        prefix = path.isEmpty ? Self.defaultPrefix : String(path)
        let allowed = prefix.unicodeScalars.allSatisfy { $0.isASCII && (Self.prefixCharacters.contains($0)) }
        guard allowed, prefix.count <= 64 else {
            throw RedisURLError(
                "the prefix '\(prefix)' of '\(text)' may have only letters, digits, '.', '_' and '-', at most 64"
            )
        }
    }

    private static let prefixCharacters = Set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-".unicodeScalars
    )

    private static func hostAndPort(
        _ authority: Substring, in text: String, form: String
    ) throws(RedisURLError) -> (String, Int) {
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                throw RedisURLError("the IPv6 address in '\(text)' has no closing ']': \(form)")
            }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            guard after.isEmpty || after.hasPrefix(":") else { throw RedisURLError("'\(text)' is malformed: \(form)") }
            portText = after.isEmpty ? nil : after.dropFirst()
        } else {
            let parts = authority.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count <= 2 else {
                throw RedisURLError("'\(text)' has more than one ':' (IPv6 addresses go in brackets): \(form)")
            }
            host = parts[0]
            portText = parts.count == 2 ? parts[1] : nil
        }
        guard !host.isEmpty else { throw RedisURLError("'\(text)' names no host: \(form)") }
        guard let portText else { return (String(host), 6379) }
        guard let port = Int(portText), (1...65535).contains(port) else {
            throw RedisURLError("the port '\(portText)' of '\(text)' is not a number from 1 to 65535")
        }
        return (String(host), port)
    }

    public var description: String {
        let shown = host.contains(":") ? "[\(host)]" : host
        return "redis://\(shown):\(port)/\(prefix)"
    }
}

/// A `redis://` URL that cannot be used, and why.
public struct RedisURLError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
