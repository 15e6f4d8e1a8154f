extension StreamRequest {
    /// Keeps the connection open after the handler returns and hands it to the server's loop, where
    /// `handler` serves it as an event-mode connection (socketserver users override `shutdown_request` for
    /// this): input already read but not yet taken reaches it first, it may join topics and receive
    /// `send` / `broadcast`, and the connection closes when it closes it. Call it from `handle`; the
    /// connection keeps its place in the connection limits.
    public func handOff(to handler: any StreamEventHandler) {
        successor = HandOff(handler: handler)
    }

    /// For `handOff`: sends what is buffered, puts the socket back in non-blocking mode and gives it up,
    /// with the input not yet taken and whether the input had ended. `nil` when the socket is unusable.
    func detach() -> (socket: Socket, unread: [UInt8], inputEnded: Bool)? {
        guard socket.isOpen, (try? flush()) != nil, (try? socket.setBlocking(false)) != nil else { return nil }
        let descriptor = writeLock.withLock { _ in socket.takeDescriptor() }
        return (Socket(descriptor: descriptor), input.takeAll(), inputEnded)
    }
}
