import EvServer

#if canImport(Glibc)
import Glibc
#endif

/// A `--listen` value for sockets the daemon inherits instead of binding: `systemd://` (every socket systemd
/// passes), `systemd://NAME` (those `LISTEN_FDNAMES` names NAME) or `fd://N` (descriptor N), optionally with
/// `?service=NAME&mode=MODE` as any listener.
///
/// Its transport and address are not in the URL: they are read from the socket once it is adopted
/// (`InheritedSocket.inspect`), and `spec(transport:address:)` then makes the listener's `ListenerSpec`.
public struct InheritedListener: Equatable, Sendable {
    /// Where the sockets come from.
    public enum Origin: Equatable, Sendable {
        /// systemd's socket activation (`LISTEN_FDS`): all its sockets (`name` nil) or those named `name`.
        case systemd(name: String?)
        /// One inherited descriptor.
        case descriptor(CInt)
    }

    /// Which descriptors to take: systemd's (all or by name) or one by number.
    public let origin: Origin
    /// The listener's own service, when its URL names one.
    public let service: BuiltinService?
    /// The listener's own mode, when its URL names one.
    public let mode: ModeName?
    /// `proxy=1` / `proxy=0`, when its URL says.
    public let proxy: Bool?

    /// Parses `systemd://[NAME]` or `fd://N` (with an optional query); `nil` for any other scheme.
    public init?(parsing text: String) throws(ListenerSpecError) {
        let (base, query) = ListenerSpec.split(text, at: "?")
        if base.hasPrefix("systemd://") {
            let name = String(base.dropFirst("systemd://".count))
            // systemd allows names of up to 255 printable characters other than ':'.
            guard name.utf8.count <= 255, name.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0 != ":" }) else {
                throw ListenerSpecError(text, "a socket name has at most 255 printable characters, no ':'")
            }
            origin = .systemd(name: name.isEmpty ? nil : name)
        } else if base.hasPrefix("fd://") {
            let number = base.dropFirst("fd://".count)
            guard let descriptor = CInt(number), descriptor >= 0 else {
                throw ListenerSpecError(text, "expected fd://N with N a descriptor number, as in fd://3")
            }
            origin = .descriptor(descriptor)
        } else {
            return nil
        }
        (service, mode, proxy) = try ListenerSpec.parseQuery(query, of: text)
    }

    /// The listener once its socket is adopted: the kind and address read from the socket.
    public func spec(transport: ListenerSpec.Transport, address: SocketAddress) -> ListenerSpec {
        ListenerSpec(transport: transport, address: address, service: service, mode: mode, proxy: proxy)
    }
}
