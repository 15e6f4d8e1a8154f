import EvServer

/// Runs a `StreamService` as an event handler (event mode): replies are queued on the connection as they are
/// produced, never blocking; an endless service writes while the connection is writable.
final class ServiceEventHandler<Service: StreamService>: StreamEventHandler {
    private var service: Service?

    func connectionOpened(_ connection: StreamConnection) {
        var service = Service(maximumLineLength: connection.server.configuration.maximumLineLength)
        let close = service.opened(send: connection.write)
        self.service = service
        if close { connection.close() } else { produce(connection) }
    }

    func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) {
        guard Service.endlessOutput == nil, service!.received(bytes, send: connection.write) else { return }
        connection.close()
    }

    func connectionWritable(_ connection: StreamConnection) { produce(connection) }

    private func produce(_ connection: StreamConnection) {
        guard let output = Service.endlessOutput else { return }
        while connection.isWritable { connection.write(output) }
    }
}
