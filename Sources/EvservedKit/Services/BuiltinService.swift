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

    /// The stream handler for `mode`: event-driven for `.event`, blocking for the others.
    public func handler(for mode: ExecutionMode) -> StreamHandler {
        if mode == .async {
            switch self {
            case .echo: return .async { EchoAsyncHandler() }
            case .upper: return .async { UpperAsyncHandler() }
            case .daytime: return .async { DaytimeAsyncHandler() }
            case .discard: return .async { DiscardAsyncHandler() }
            case .chargen: return .async { ChargenAsyncHandler() }
            }
        }
        if mode.isBlocking {
            switch self {
            case .echo: return .blocking { EchoRequestHandler() }
            case .upper: return .blocking { UpperRequestHandler() }
            case .daytime: return .blocking { DaytimeRequestHandler() }
            case .discard: return .blocking { DiscardRequestHandler() }
            case .chargen: return .blocking { ChargenRequestHandler() }
            }
        }
        switch self {
        case .echo: return .event { EchoEventHandler() }
        case .upper: return .event { UpperEventHandler() }
        case .daytime: return .event { DaytimeEventHandler() }
        case .discard: return .event { DiscardEventHandler() }
        case .chargen: return .event { ChargenEventHandler() }
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
