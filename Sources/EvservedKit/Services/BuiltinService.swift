import EvServer

/// The classic inetd internal services, each in both handler styles so it runs in every execution mode.
public enum BuiltinService: String, CaseIterable, Sendable {
    /// RFC 862: every byte back, verbatim.
    case echo
    /// Each line back upper-cased (the classic socketserver example).
    case upper
    /// RFC 867: one line with the date and time, then close.
    case daytime
    /// RFC 863: read and throw away.
    case discard
    /// RFC 864: an endless stream of rotating printable-character lines.
    case chargen
    /// Rooms of clients that message each other (`ChatRoom`): across processes and hosts with a registry.
    case chat
    /// One line with the client's address as the server sees it (after a PROXY protocol header, the
    /// address it gave), then close.
    case whoami

    /// The stream handler for `mode`: the service's one definition (`StreamService`) as an event handler
    /// (`.event`), an async handler (`.async`) or a blocking handler (the others). Each case names its type,
    /// so the adapters are specialised for it.
    public func handler(for mode: ExecutionMode) -> StreamHandler {
        switch self {
        case .echo: return Self.handler(sharing: EchoService.self, in: mode)
        case .upper: return Self.handler(running: UpperService.self, in: mode)
        case .daytime: return Self.handler(sharing: DaytimeService.self, in: mode)
        case .discard: return Self.handler(sharing: DiscardService.self, in: mode)
        case .chargen: return Self.handler(sharing: ChargenService.self, in: mode)
        case .chat: return Self.chatHandler(in: mode)
        case .whoami: return WhoamiService.handler(for: mode)
        }
    }

    private static func handler<Service: StreamService & StreamEventHandler>(
        running service: Service.Type, in mode: ExecutionMode
    ) -> StreamHandler {
        switch mode {
        case .event: return .event { Service() }
        case .async: return .async { ServiceAsyncHandler<Service>() }
        case .sync, .thread, .pool: return .blocking { ServiceRequestHandler<Service>() }
        }
    }

    /// A service without state (no stored properties, so `Sendable`): in event mode one object serves every
    /// connection, instead of one made per connection (an allocation and its release each).
    private static func handler<Service: StreamService & StreamEventHandler & Sendable>(
        sharing service: Service.Type, in mode: ExecutionMode
    ) -> StreamHandler {
        guard case .event = mode else { return handler(running: service, in: mode) }
        let shared = Service()
        return .event { shared }
    }

    private static func chatHandler(in mode: ExecutionMode) -> StreamHandler {
        switch mode {
        case .event: return .event { ChatEventHandler() }
        case .async: return .async { ChatAsyncHandler() }
        case .sync, .thread, .pool: return .blocking { ChatRequestHandler() }
        }
    }

    /// The datagram handler for `mode` (the RFC's UDP flavour of the service).
    public func datagramHandler(for mode: ExecutionMode) -> DatagramHandler {
        let reply: DatagramReply
        switch self {
        case .whoami: return WhoamiService.datagramHandler(for: mode)
        case .echo: reply = DatagramReplies.echo
        case .upper: reply = DatagramReplies.upper
        case .daytime: reply = DatagramReplies.daytime
        case .discard: reply = DatagramReplies.discard
        case .chargen: reply = DatagramReplies.chargen
        case .chat: preconditionFailure("chat over datagrams is refused when the command line is read")
        }
        switch mode {
        case .async: return .async { ReplyingDatagramAsyncHandler(reply) }
        case .event: return .event { ReplyingDatagramEventHandler(reply) }
        case .sync, .thread, .pool: return .blocking { ReplyingDatagramRequestHandler(reply) }
        }
    }

    /// Every name, comma-separated, for help texts and error messages.
    public static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }
}
