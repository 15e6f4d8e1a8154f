/// What serves a datagram server's datagrams, in one of the styles; the style must fit the server's
/// `ExecutionMode` as for stream servers.
public enum DatagramHandler: Sendable {
    /// One handler for the whole server, called on the loop thread for each datagram; the factory is
    /// called once, on the loop thread.
    case event(@Sendable () -> any DatagramEventHandler)
    /// socketserver-style setup / handle / finish, one handler object per datagram, made on the thread
    /// that runs it.
    case blocking(@Sendable () -> any DatagramRequestHandler)
    /// One handler for the server (made once, on the loop thread), a task per datagram on the loop's
    /// task executor.
    case async(@Sendable () -> any DatagramAsyncHandler)

    var styleName: String {
        switch self {
        case .event: return "an event-driven datagram handler"
        case .blocking: return "a blocking datagram handler"
        case .async: return "an async datagram handler"
        }
    }

    func fits(_ mode: ExecutionMode) -> Bool {
        switch self {
        case .event: return mode == .event
        case .blocking: return mode.isBlocking
        case .async: return mode == .async
        }
    }
}
