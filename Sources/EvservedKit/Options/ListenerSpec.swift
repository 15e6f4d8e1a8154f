import EvServer

/// One `--listen` value: a transport URL, optionally with its own service and mode.
///
/// Forms: `tcp://HOST:PORT`, `tcp://[IPV6]:PORT`, `unix:///absolute/path` for streams, `udp://HOST:PORT`,
/// `udp://[IPV6]:PORT`, `unixgram:///absolute/path` for datagrams, each optionally followed by
/// `?service=NAME` and/or `&mode=MODE`, for example `tcp://0.0.0.0:7?service=echo`. A listener without its
/// own service or mode takes the daemon's `--service` / `--mode`. Inherited sockets (`systemd://`, `fd://N`)
/// are `InheritedListener`s until adopted, then `ListenerSpec`s with the address read from the socket.
/// Stream listeners also take `proxy=1` (every connection starts with a PROXY protocol header) or `proxy=0`
/// (none, whatever `--proxy-protocol` says).
public struct ListenerSpec: Equatable, Sendable {
    /// Whether the listener serves a byte stream (TCP, Unix stream) or datagrams (UDP, Unix datagram).
    public enum Transport: Equatable, Sendable { case stream, datagram }

    /// A stream or a datagram listener.
    public let transport: Transport
    /// Where it listens.
    public let address: SocketAddress
    /// The listener's own service, when its URL names one.
    public let service: BuiltinService?
    /// The listener's own mode, when its URL names one.
    public let mode: ModeName?
    /// `proxy=1` / `proxy=0` in the URL: whether connections start with a PROXY protocol header; `nil`
    /// when the URL does not say (the daemon's `--proxy-protocol` decides).
    public let proxy: Bool?

    /// The URL of a bound address, as printed in `listening` lines.
    public static func url(for address: SocketAddress, transport: Transport) -> String {
        switch (address.unixPath, transport) {
        case (let path?, .stream): return "unix://\(path)"
        case (let path?, .datagram): return "unixgram://\(path)"
        case (nil, .stream): return "tcp://\(address)"
        case (nil, .datagram): return "udp://\(address)"
        }
    }

    /// A listener of `transport` on `address`, with its own service, mode and PROXY protocol if given.
    public init(
        transport: Transport, address: SocketAddress, service: BuiltinService?, mode: ModeName?, proxy: Bool? = nil
    ) {
        self.transport = transport
        self.address = address
        self.service = service
        self.mode = mode
        self.proxy = proxy
    }

    /// Parses one `--listen` value; the error says what is wrong and shows a correct form.
    public init(parsing text: String) throws(ListenerSpecError) {
        let (base, query) = ListenerSpec.split(text, at: "?")
        (service, mode, proxy) = try ListenerSpec.parseQuery(query, of: text)
        (transport, address) = try ListenerSpec.parseAddress(base, of: text)
        if proxy == true, transport == .datagram {
            throw ListenerSpecError(
                text, "proxy=1 is for stream listeners (tcp://, unix://): datagrams carry no header"
            )
        }
    }

    /// `service=NAME&mode=MODE&proxy=1`, any of them.
    static func parseQuery(
        _ query: String?, of text: String
    ) throws(ListenerSpecError) -> (BuiltinService?, ModeName?, Bool?) {
        var service: BuiltinService?
        var mode: ModeName?
        var proxy: Bool?
        for pair in (query ?? "").split(separator: "&", omittingEmptySubsequences: true) {
            let (key, value) = ListenerSpec.split(String(pair), at: "=")
            switch key {
            case "service":
                guard let value, let parsed = BuiltinService(rawValue: value) else {
                    throw ListenerSpecError(text, "unknown service '\(value ?? "")' (known: \(BuiltinService.names))")
                }
                service = parsed
            case "mode":
                guard let value, let parsed = ModeName(rawValue: value) else {
                    throw ListenerSpecError(text, "unknown mode '\(value ?? "")' (known: \(ModeName.names))")
                }
                mode = parsed
            case "proxy":
                guard let value, value == "1" || value == "0" else {
                    throw ListenerSpecError(text, "proxy='\(value ?? "")': use proxy=1 (PROXY protocol) or proxy=0")
                }
                proxy = value == "1"
            default:
                throw ListenerSpecError(text, "unknown parameter '\(key)' (known: service, mode, proxy)")
            }
        }
        return (service, mode, proxy)
    }

    /// `SCHEME://ADDRESS`: the transport and the address.
    private static func parseAddress(
        _ base: String, of text: String
    ) throws(ListenerSpecError) -> (Transport, SocketAddress) {
        let schemes: [(prefix: String, transport: Transport, isUnix: Bool)] = [
            ("tcp://", .stream, false), ("udp://", .datagram, false),
            ("unix://", .stream, true), ("unixgram://", .datagram, true),
        ]
        guard let scheme = schemes.first(where: { base.hasPrefix($0.prefix) }) else {
            throw ListenerSpecError(
                text,
                """
                unknown scheme: use tcp://HOST:PORT, udp://HOST:PORT, unix:///path, unixgram:///path, or for \
                inherited sockets systemd://[NAME] or fd://N
                """
            )
        }
        let rest = String(base.dropFirst(scheme.prefix.count))
        let name = scheme.prefix.dropLast(3)
        let expected = scheme.isUnix
            ? "expected \(name):///absolute/path (three slashes), as in \(name):///tmp/evserved.sock"
            : "expected \(name)://HOST:PORT, as in \(name)://127.0.0.1:7000 or \(name)://[::1]:7000"
        guard scheme.isUnix ? rest.hasPrefix("/") : !(rest.hasPrefix("/") || rest.isEmpty) else {
            throw ListenerSpecError(text, expected)
        }
        let address: SocketAddress
        do {
            address = scheme.isUnix ? try SocketAddress(unixPath: rest) : try SocketAddress(parsing: rest)
        } catch {
            throw ListenerSpecError(text, error.message)
        }
        // SocketAddress also reads `./path` as a Unix path.
        guard scheme.isUnix == address.isUnix else { throw ListenerSpecError(text, expected) }
        return (scheme.transport, address)
    }

    static func split(_ text: String, at separator: Character) -> (String, String?) {
        guard let index = text.firstIndex(of: separator) else { return (text, nil) }
        return (String(text[..<index]), String(text[text.index(after: index)...]))
    }
}

/// Why a `--listen` value was refused, in a sentence an operator can act on.
public struct ListenerSpecError: Error, CustomStringConvertible {
    public let description: String
    init(_ text: String, _ problem: String) {
        description = "invalid --listen '\(text)': \(problem)"
    }
}
