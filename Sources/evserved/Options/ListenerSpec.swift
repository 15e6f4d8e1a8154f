import EvServer

/// One `--listen` value: a transport URL, optionally with its own service and mode.
///
/// Forms: `tcp://HOST:PORT`, `tcp://[IPV6]:PORT`, `unix:///absolute/path`, each optionally followed by
/// `?service=NAME` and/or `&mode=MODE`, for example `tcp://0.0.0.0:7?service=echo`. A listener without its
/// own service or mode takes the daemon's `--service` / `--mode`.
struct ListenerSpec: Equatable {
    let address: SocketAddress
    let service: BuiltinService?
    let mode: ModeName?

    /// The URL of a bound address, as printed in `listening` lines.
    static func url(for address: SocketAddress) -> String {
        if let path = address.unixPath { return "unix://\(path)" }
        return "tcp://\(address)"
    }

    init(parsing text: String) throws(ListenerSpecError) {
        let (base, query) = ListenerSpec.split(text, at: "?")
        var service: BuiltinService?
        var mode: ModeName?
        if let query {
            for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
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
                default:
                    throw ListenerSpecError(text, "unknown parameter '\(key)' (known: service, mode)")
                }
            }
        }
        do {
            if base.hasPrefix("tcp://") {
                let hostPort = String(base.dropFirst("tcp://".count))
                guard !hostPort.hasPrefix("/"), !hostPort.isEmpty else {
                    throw ListenerSpecError(text, "expected tcp://HOST:PORT, as in tcp://127.0.0.1:7000 or tcp://[::1]:7000")
                }
                address = try SocketAddress(parsing: hostPort)
            } else if base.hasPrefix("unix://") {
                let path = String(base.dropFirst("unix://".count))
                guard path.hasPrefix("/") else {
                    throw ListenerSpecError(text, "expected unix:///absolute/path (three slashes), as in unix:///tmp/evserved.sock")
                }
                address = try SocketAddress(unixPath: path)
            } else {
                throw ListenerSpecError(text, "unknown scheme: use tcp://HOST:PORT or unix:///path")
            }
        } catch let error as ServerError {
            throw ListenerSpecError(text, error.message)
        } catch {
            throw error as! ListenerSpecError
        }
        self.service = service
        self.mode = mode
    }

    private static func split(_ text: String, at separator: Character) -> (String, String?) {
        guard let index = text.firstIndex(of: separator) else { return (text, nil) }
        return (String(text[..<index]), String(text[text.index(after: index)...]))
    }
}

struct ListenerSpecError: Error, CustomStringConvertible {
    let description: String
    init(_ text: String, _ problem: String) {
        description = "invalid --listen '\(text)': \(problem)"
    }
}
