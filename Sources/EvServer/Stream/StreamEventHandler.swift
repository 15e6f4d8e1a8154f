/// An event-driven connection handler: callbacks on the loop thread, one handler object per connection.
///
/// Callbacks must not block: every connection of the server shares the thread. Write replies with
/// `StreamConnection.write`, which never blocks (bytes the kernel cannot take yet are queued, and reading
/// pauses while the queue is above the high water mark). A callback that throws has its error reported
/// once to the `handleError` hook, and its connection is closed; the server keeps serving.
public protocol StreamEventHandler: AnyObject {
    /// The connection was accepted and verified.
    func connectionOpened(_ connection: StreamConnection) throws
    /// Bytes arrived. `bytes` is valid only during the call: copy what you keep.
    func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) throws
    /// The client half-closed its side (no more input). The default closes after the queued replies are
    /// sent.
    func connectionInputEnded(_ connection: StreamConnection) throws
    /// The write queue fell to the low water mark after having reached the high one: a good moment to
    /// produce more output.
    func connectionWritable(_ connection: StreamConnection) throws
    /// The connection is closed; `error` says why when it was not an orderly close.
    func connectionClosed(_ connection: StreamConnection, error: ConnectionError?)
}

extension StreamEventHandler {
    /// By default, nothing.
    public func connectionOpened(_ connection: StreamConnection) throws {}
    /// By default, closes once the queued replies are sent.
    public func connectionInputEnded(_ connection: StreamConnection) throws { connection.close() }
    /// By default, nothing.
    public func connectionWritable(_ connection: StreamConnection) throws {}
    /// By default, nothing.
    public func connectionClosed(_ connection: StreamConnection, error: ConnectionError?) {}
}
