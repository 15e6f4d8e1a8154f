extension StreamConnection {
    /// Joins `topic`: `StreamServer.broadcast(_:topic:)` reaches the connection (event and async modes).
    public func join(topic: String) {
        loop.preconditionInLoop()
        guard isOpen else { return }  // the owner is unowned(unsafe): not reached once closed
        owner._withUnsafeGuaranteedRef { $0.join(id, topic: topic) }
    }

    /// Leaves `topic`.
    public func leave(topic: String) {
        loop.preconditionInLoop()
        guard isOpen else { return }
        owner._withUnsafeGuaranteedRef { $0.leave(id, topic: topic) }
    }
}
