/// What a `StreamConnection` needs from the server that owns it, and all it may reach: the narrow interface
/// between a connection and its server. Called on the loop thread.
protocol ConnectionOwner: AnyObject {
    /// The connection closed (once): forget it and free its slot.
    func connectionDidClose(_ connection: StreamConnection)
    /// The connection was detached (once): forget it, but leave its slot to `DetachedConnection.release()`.
    func connectionDidDetach(_ connection: StreamConnection)
    /// A handler callback threw: report it once (the connection then closes).
    func reportHandlerError(_ error: any Error, client: SocketAddress)
    /// `join(topic:)`: broadcasts to `topic` reach the connection `id`.
    func join(_ id: ConnectionID, topic: String)
    /// `leave(topic:)`.
    func leave(_ id: ConnectionID, topic: String)
}
