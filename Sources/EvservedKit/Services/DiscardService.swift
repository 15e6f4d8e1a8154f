import EvServer

/// RFC 863: input is read and thrown away; nothing is sent.
final class DiscardService: StreamService, StreamEventHandler, Sendable {
    init() {}
}
