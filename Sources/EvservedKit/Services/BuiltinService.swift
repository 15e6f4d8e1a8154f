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

    /// The service's one definition of its behaviour on a connection.
    private var streamService: any StreamService.Type {
        switch self {
        case .echo: return EchoService.self
        case .upper: return UpperService.self
        case .daytime: return DaytimeService.self
        case .discard: return DiscardService.self
        case .chargen: return ChargenService.self
        }
    }

    /// The stream handler for `mode`: the same service as an event handler (`.event`), an async handler
    /// (`.async`) or a blocking handler (the others).
    public func handler(for mode: ExecutionMode) -> StreamHandler {
        Self.handler(running: streamService, in: mode)
    }

    private static func handler<Service: StreamService>(running service: Service.Type, in mode: ExecutionMode) -> StreamHandler {
        switch mode {
        case .event: return .event { ServiceEventHandler<Service>() }
        case .async: return .async { ServiceAsyncHandler<Service>() }
        case .sync, .thread, .pool: return .blocking { ServiceRequestHandler<Service>() }
        }
    }

    /// The datagram handler for `mode` (the RFC's UDP flavour of the service).
    public func datagramHandler(for mode: ExecutionMode) -> DatagramHandler {
        let reply: DatagramReply
        switch self {
        case .echo: reply = DatagramReplies.echo
        case .upper: reply = DatagramReplies.upper
        case .daytime: reply = DatagramReplies.daytime
        case .discard: reply = DatagramReplies.discard
        case .chargen: reply = DatagramReplies.chargen
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
