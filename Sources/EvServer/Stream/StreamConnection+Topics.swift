extension StreamConnection {
    /// Joins `topic`: `StreamServer.broadcast(_:topic:)` reaches the connection (event and async modes).
    public func join(topic: String) {
        loop.preconditionInLoop()
        owner.join(id, topic: topic)
    }

    /// Leaves `topic`.
    public func leave(topic: String) {
        loop.preconditionInLoop()
        owner.leave(id, topic: topic)
    }
}
