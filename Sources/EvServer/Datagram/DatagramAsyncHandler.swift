/// An async datagram handler: one object for the server, whose `handle` runs for each datagram in a task on
/// the loop's task executor, so a handler may `await` (another service, a timer) without holding a thread.
/// Reply with `channel.send(_:to:)`, which never blocks. As for stream handlers, blocking calls stall the loop.
///
/// Each datagram is handled in a task, and a handler that awaits never delays the next datagram: it goes to
/// another task. A task may serve several datagrams one after another (the server keeps a few tasks between
/// datagrams instead of starting one per datagram), so do not rely on a task's identity, lifetime or
/// priority: task-local values bound with `withValue` inside `handle` are scoped to that call and do not
/// leak into the next datagram's. The tasks are not cancelled when the server closes: `close()` waits
/// briefly (about a second) for handlers still running, and a task that a handler cancels serves no further
/// datagram.
public protocol DatagramAsyncHandler: AnyObject {
    /// Handles one datagram from `client` (a copy the handler owns), in a task on the loop; replies go
    /// through `channel`. A thrown error is reported to `handleError` once for this datagram.
    ///
    /// `nonisolated(nonsending)`: it runs where its task runs, on the loop, with no executor hop on the way
    /// in. (A handler may declare it plain `async`: it runs on the loop too, through the task's executor
    /// preference.)
    nonisolated(nonsending) func handle(
        _ datagram: [UInt8], from client: SocketAddress, channel: DatagramChannel
    ) async throws
}
