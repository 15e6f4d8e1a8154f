/// An event-driven datagram handler: one object per server, called on the loop thread for every datagram.
///
/// A datagram in, zero or more datagrams out: reply with `channel.send(_:to:)`, which never blocks.
/// The callback must not block, since every datagram of the server waits for it. An error it throws is
/// reported to the `handleError` hook with the sender's address; the server keeps serving.
public protocol DatagramEventHandler: AnyObject {
    /// A datagram arrived from `client`. `datagram` is valid only during the call: copy what you keep.
    func channel(
        _ channel: DatagramChannel, received datagram: UnsafeRawBufferPointer, from client: SocketAddress
    ) throws
}
