/// What serves each connection: a factory that makes one handler per connection, in one of the styles.
///
/// The style must fit the server's `ExecutionMode`: `.event` handlers run in `.event` mode, `.blocking`
/// handlers in `.sync`, `.thread` and `.pool`, `.async` handlers in `.async`.
public enum StreamHandler: Sendable {
    /// Callbacks on the loop thread; the factory is called on the loop thread.
    case event(@Sendable () -> any StreamEventHandler)
    /// socketserver-style setup / handle / finish; the factory is called on the thread that will run it.
    case blocking(@Sendable () -> any StreamRequestHandler)
    /// `handle(connection) async throws` on the loop's task executor; the factory is called in the task.
    case async(@Sendable () -> any StreamAsyncHandler)

    var style: HandlerStyle {
        switch self {
        case .event: return .event
        case .blocking: return .blocking
        case .async: return .async
        }
    }
}
