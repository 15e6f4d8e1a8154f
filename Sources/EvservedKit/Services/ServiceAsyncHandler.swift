import EvServer

/// Runs a `StreamService` as an async handler (async mode): the blocking handler's loop with `await`;
/// each write suspends while the client is behind.
///
/// Its async frames are held by every idle connection, so they are kept small: the endless services'
/// loop is a function of its own, and input is lent, not copied into an array.
final class ServiceAsyncHandler<Service: StreamService>: StreamAsyncHandler {
    func handle(_ connection: AsyncConnection) async throws {
        let service = Service()
        var output: [UInt8] = []
        let close = service.opened(maximumLineLength: connection.maximumLineLength) { output.append(contentsOf: $0) }
        try await flush(&output, to: connection)
        if close { return }
        if let endless = Service.endlessOutput { return try await produce(endless, to: connection) }
        while true {
            // Lent bytes, not an array per read: no allocation per request.
            let close = try await connection.read(upTo: 64 * 1024) { bytes in
                bytes.isEmpty || service.received(bytes) { output.append(contentsOf: $0) }
            }
            try await flush(&output, to: connection)
            if close { return }
        }
    }

    /// Writes `endless` again and again until the client goes away.
    private func produce(_ endless: [UInt8], to connection: AsyncConnection) async throws {
        do {
            while true { try await connection.write(endless) }
        } catch let error as ConnectionError where error.code == .peerClosed {
            return
        }
    }

    private func flush(_ output: inout [UInt8], to connection: AsyncConnection) async throws {
        guard !output.isEmpty else { return }
        try await connection.write(output)
        output.removeAll(keepingCapacity: true)
    }
}
