extension StreamServer {
    /// Runs a blocking handler's phases for one connection on the calling thread (a worker, or the loop
    /// thread in `.sync` mode), reports the first error once, then closes the connection and frees its slot.
    func serveBlocking(_ socket: Socket, peer: SocketAddress, handler: any StreamRequestHandler) {
        let request = StreamRequest(socket: socket, clientAddress: peer, server: self, configuration: configuration)
        blocking.register(request)
        if let failure = handler.runPhases(on: request) {
            engine.context.reportHandlerError(failure, client: peer)
        }
        if let successor = request.successor, let detached = blocking.unregister(detaching: request) {
            let connection = HandedOffConnection(
                socket: detached.socket, peer: peer, unread: detached.unread, inputEnded: detached.inputEnded,
                successor: successor
            )
            let transport = engine.transport
            engine.loop.execute { transport.value.adopt(connection) }
            return  // the connection keeps its slot until the loop closes it
        }
        blocking.unregister(request) { request.close() }
        limits.releaseAndNotify(peer)
    }
}
