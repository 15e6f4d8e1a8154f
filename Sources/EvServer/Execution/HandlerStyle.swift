/// The three ways a handler runs; each fits some execution modes: event handlers `.event`, blocking
/// (socketserver-style) handlers `.sync`, `.thread` and `.pool`, async handlers `.async`.
enum HandlerStyle {
    case event
    case blocking
    case async

    func fits(_ mode: ExecutionMode) -> Bool {
        switch self {
        case .event: return mode == .event
        case .blocking: return mode.isBlocking
        case .async: return mode == .async
        }
    }

    /// Throws unless the style fits `mode`, naming the protocols of `transport` ("Stream", "Datagram")
    /// that would.
    func check(_ mode: ExecutionMode, transport: String) throws(ServerError) {
        guard !fits(mode) else { return }
        let name = switch self {
        case .event: "an event-driven handler"
        case .blocking: "a blocking handler"
        case .async: "an async handler"
        }
        throw ServerError(
            .invalidConfiguration,
            """
            \(name) cannot run in \(mode) mode: use a \(transport)EventHandler with .event, \
            a \(transport)AsyncHandler with .async, or a \(transport)RequestHandler with .sync, .thread or .pool
            """
        )
    }
}
