/// An async datagram handler: one object for the server, and a task per datagram on the loop's task
/// executor, so a handler may `await` (another service, a timer) without holding a thread. Reply with
/// `channel.send(_:to:)`, which never blocks. As for stream handlers, blocking calls stall the loop.
public protocol DatagramAsyncHandler: AnyObject {
    /// Handles one datagram from `client`, in a task of its own on the loop; replies go through `channel`.
    /// A thrown error is reported to `handleError` once.
    func handle(_ datagram: [UInt8], from client: SocketAddress, channel: DatagramChannel) async throws
}
