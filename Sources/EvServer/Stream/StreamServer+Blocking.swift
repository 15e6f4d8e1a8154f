extension StreamServer {
    /// Runs a blocking handler's phases for one connection on the calling thread (a worker, or the loop
    /// thread in `.sync` mode), reports the first error once, then closes the connection and frees its slot.
    func serveBlocking(_ socket: Socket, peer: SocketAddress, handler: any StreamRequestHandler) {
        let request = StreamRequest(socket: socket, clientAddress: peer, server: self, configuration: configuration)
        blocking.register(request)
        if let failure = handler.runPhases(on: request) {
            request.tally.note(.handlerError)
            engine.context.reportHandlerError(failure, client: peer)
        }
        if let successor = request.successor, let detached = blocking.unregister(detaching: request) {
            var tally = request.tally
            tally.bytesSent = request.bytesSent
            let connection = HandedOffConnection(
                socket: detached.socket, peer: peer, unread: detached.unread, inputEnded: detached.inputEnded,
                successor: successor, tally: tally
            )
            let transport = engine.transport
            engine.loop.execute { transport.value.adopt(connection) }
            return  // the connection keeps its slot until the loop closes it
        }
        let endedByServer = blocking.unregister(request) { request.close() }
        limits.releaseAndNotify(peer)
        var tally = request.tally
        tally.bytesSent = request.bytesSent
        // The server's close or drain explains an end of input (or a failed read) better than the client.
        if let endedByServer, tally.reason == nil || tally.reason == .closedByPeer || tally.reason == .reset {
            tally.reason = endedByServer
        }
        engine.context.connectionClosed(tally.summary(
            id: request.id, peer: peer, local: engine.context.localAddress, otherwise: .closedByHandler
        ))
    }
}
