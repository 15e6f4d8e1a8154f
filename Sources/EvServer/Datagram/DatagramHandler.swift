/// What serves a datagram server's datagrams, in one of the styles; the style must fit the server's
/// `ExecutionMode` as for stream servers.
public enum DatagramHandler: Sendable {
    /// One handler for the whole server, called on the loop thread for each datagram; the factory is
    /// called once, on the loop thread.
    case event(@Sendable () -> any DatagramEventHandler)
    /// socketserver-style setup / handle / finish, one handler object per datagram, made on the thread
    /// that runs it.
    case blocking(@Sendable () -> any DatagramRequestHandler)
    /// One handler for the server (made once, on the loop thread), each datagram handled in a task on the
    /// loop's task executor (a task may serve several, one after another: see `DatagramAsyncHandler`).
    case async(@Sendable () -> any DatagramAsyncHandler)

    var style: HandlerStyle {
        switch self {
        case .event: return .event
        case .blocking: return .blocking
        case .async: return .async
        }
    }
}
