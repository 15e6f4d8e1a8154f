import ArgumentParser
import EvServer

/// The classic inetd internal services, each in both handler styles so it runs in every execution mode.
enum BuiltinService: String, CaseIterable, ExpressibleByArgument {
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

    /// The handler for `mode`: event-driven for `.event`, blocking for the others.
    func handler(for mode: ExecutionMode) -> StreamHandler {
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

    static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }
}
