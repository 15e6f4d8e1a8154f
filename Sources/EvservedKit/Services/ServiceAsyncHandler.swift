import EvServer

/// Runs a `StreamService` as an async handler (async mode): the blocking handler's loop with `await`;
/// each write suspends while the client is behind.
///
/// Its async frames are held by every idle connection, so they are kept small: the endless services'
/// loop is a function of its own, input is lent, not copied into an array, and replies go straight into
/// the write queue.
final class ServiceAsyncHandler<Service: StreamService>: StreamAsyncHandler {
    /// A service that only answers (echo, upper, discard) holds no task while its client is silent.
    var startsOnInput: Bool { !Service.speaksFirst && Service.endlessOutput == nil }

    func handle(_ connection: AsyncConnection) async throws {
        let service = Service()
        let close = try service.opened(maximumLineLength: connection.maximumLineLength) { try connection.queue($0) }
        try await connection.waitForRoom()
        if close { return }
        if let endless = Service.endlessOutput { return try await produce(endless, to: connection) }
        while true {
            // Lent bytes, not an array per read, and replies queued as they are produced (copied once, as in
            // event mode): no allocation and one async call less per request.
            let close = try await connection.read(upTo: 64 * 1024) { bytes in
                try bytes.isEmpty || service.received(bytes) { try connection.queue($0) }
            }
            try await connection.waitForRoom()
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
}
