import EvServer

#if canImport(Glibc)
import Glibc
#endif

/// Finds the numeric addresses of a Redis host off the loop: `getaddrinfo` may wait seconds for a DNS
/// answer (5 s per attempt when a resolver times out), and a loop thread that waits stalls every connection
/// it serves. hiredis is then given the numeric addresses, for which it does no lookup of its own.
///
/// A numeric host (an IPv4 or IPv6 literal) is its own answer: no thread, no lookup.
enum RedisResolver {
    /// Looks `url`'s host up on a short-lived thread of its own and hands the answer to `done` on `loop`'s
    /// thread (through `EventLoop.execute`); a numeric host is answered at once, on the calling thread (the
    /// loop's). The resolver thread touches neither hiredis nor the loop: only `execute`.
    static func resolve(
        _ url: RedisURL, on loop: EventLoop, _ done: @escaping @Sendable (Result<[String], RedisLookupError>) -> Void
    ) {
        if let literal = numeric(url.host) { return done(.success([literal])) }
        do {
            try PosixThread.spawnDetached(name: "evserver-dns") {
                let answer = lookup(url)
                loop.execute { done(answer) }
            }
        } catch {
            done(.failure(RedisLookupError(host: url.host, problem: "no thread for the lookup: \(error)")))
        }
    }

    /// Looks `url`'s host up, waiting `timeout` seconds at most (the lookup's thread is left to finish on its
    /// own, its answer dropped). For the start, before anything is served.
    static func resolve(_ url: RedisURL, within timeout: Double) -> Result<[String], RedisLookupError> {
        if let literal = numeric(url.host) { return .success([literal]) }
        let answer = Monitor<Result<[String], RedisLookupError>?>(nil)
        do {
            try PosixThread.spawnDetached(name: "evserver-dns") {
                let found = lookup(url)
                answer.withLock { $0 = found }
            }
        } catch {
            return .failure(RedisLookupError(host: url.host, problem: "no thread for the lookup: \(error)"))
        }
        let late = RedisLookupError(host: url.host, problem: "no answer within \(timeout) s")
        return answer.wait(until: { $0 != nil }, timeout: timeout) { $0 }.flatMap { $0 } ?? .failure(late)
    }

    /// `host` when it is an IPv4 or IPv6 address (no lookup needed), else `nil`.
    static func numeric(_ host: String) -> String? {
        var buffer = in6_addr()
        let isNumeric = host.withCString { text in
            inet_pton(AF_INET, text, &buffer) == 1 || inet_pton(AF_INET6, text, &buffer) == 1
        }
        return isNumeric ? host : nil
    }

    /// `getaddrinfo` (any family, stream sockets) on the calling thread: the numeric addresses in its order.
    static func lookup(_ url: RedisURL) -> Result<[String], RedisLookupError> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = CInt(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(url.host, String(url.port), &hints, &list)
        guard status == 0 else {
            return .failure(RedisLookupError(host: url.host, problem: String(cString: gai_strerror(status))))
        }
        defer { freeaddrinfo(list) }
        var addresses: [String] = []
        var entry = list
        while let current = entry {
            var text = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(current.pointee.ai_addr, current.pointee.ai_addrlen, &text, socklen_t(text.count), nil,
                           0, NI_NUMERICHOST) == 0 {
                addresses.append(String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
            entry = current.pointee.ai_next
        }
        return .success(addresses)
    }
}

/// A Redis host name that could not be looked up, and why.
public struct RedisLookupError: Error, CustomStringConvertible {
    /// The name looked up.
    public let host: String
    /// What went wrong (the resolver's message).
    public let problem: String

    public var description: String {
        "cannot look up the Redis host '\(host)': \(problem) (check the name in the redis:// URL and the DNS)"
    }
}
