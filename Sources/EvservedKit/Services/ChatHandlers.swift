import EvServer

/// `chat` in event mode: lines framed from the received bytes (`InputBuffer`), on the loop thread.
final class ChatEventHandler: StreamEventHandler {
    /// Set when the connection opens, from the server's `maximumLineLength`.
    private var room = ChatRoom(maximumLineLength: 0)
    private var input = InputBuffer()

    func connectionOpened(_ connection: StreamConnection) {
        room = ChatRoom(maximumLineLength: connection.server.configuration.maximumLineLength)
        input = InputBuffer(limit: room.readLimit + 64 * 1024)
        connection.join(topic: room.room)
    }

    func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) {
        do {
            try input.append(bytes)
            while let line = try input.nextLine(maxLength: room.readLimit) {
                guard perform(line, on: connection) else { return }
            }
        } catch {
            connection.write(lineTooLongReply(room.maximumLineLength))
            connection.close()
        }
    }

    func connectionInputEnded(_ connection: StreamConnection) {
        if !input.isEmpty { _ = perform(input.takeAll(), on: connection) }
        connection.close()
    }

    /// - Returns: whether the connection stays open.
    private func perform(_ line: [UInt8], on connection: StreamConnection) -> Bool {
        let (reply, close) = room.step(for: line, from: connection.id).perform(
            id: connection.id, server: connection.server, join: { connection.join(topic: $0) },
            leave: { connection.leave(topic: $0) }
        )
        if let reply { connection.write(reply) }
        if close { connection.close() }
        return !close
    }
}

/// `chat` in async mode: `readLine` in a loop, on the loop thread.
final class ChatAsyncHandler: StreamAsyncHandler {
    func handle(_ connection: AsyncConnection) async throws {
        var room = ChatRoom(maximumLineLength: connection.maximumLineLength)
        connection.join(topic: room.room)
        while true {
            let line: [UInt8]?
            do {
                line = try await connection.readLine(maxLength: room.readLimit)
            } catch let error as ConnectionError where error.code == .lineTooLong {
                return try await connection.write(lineTooLongReply(room.maximumLineLength))
            }
            guard let line else { return }
            let (reply, close) = room.step(for: line, from: connection.id).perform(
                id: connection.id, server: connection.server, join: { connection.join(topic: $0) },
                leave: { connection.leave(topic: $0) }
            )
            if let reply { try await connection.write(reply) }
            if close { return }
        }
    }
}

/// `chat` in the blocking modes (sync, thread, pool): `readLine` in a loop on the handler's thread; other
/// clients' lines are written to it by their senders' threads (`StreamRequest+Registry`).
final class ChatRequestHandler: StreamRequestHandler {
    func handle(_ request: StreamRequest) throws {
        var room = ChatRoom(maximumLineLength: request.maximumLineLength)
        request.join(topic: room.room)
        while true {
            let line: [UInt8]?
            do {
                line = try request.readLine(maxLength: room.readLimit)
            } catch let error as ConnectionError where error.code == .lineTooLong {
                _ = try request.write(lineTooLongReply(room.maximumLineLength))
                return
            }
            guard let line else { return }
            let (reply, close) = room.step(for: line, from: request.id).perform(
                id: request.id, server: request.server, join: { request.join(topic: $0) },
                leave: { request.leave(topic: $0) }
            )
            if let reply { _ = try request.write(reply) }
            if close { return }
        }
    }
}
