import EvServer

/// An async handler that joins `topic`, writes one greeting line (by default `id N` with the connection's
/// id, which registry tests send to), then reads until the client ends: a member of a room, for the tests
/// of `send(_:to:)` and `broadcast(_:topic:except:)`.
final class TopicMember: StreamAsyncHandler {
    let topic: String
    let greeting: @Sendable (AsyncConnection) -> String

    init(topic: String, greeting: @escaping @Sendable (AsyncConnection) -> String = { "id \($0.id)\n" }) {
        self.topic = topic
        self.greeting = greeting
    }

    func handle(_ connection: AsyncConnection) async throws {
        connection.join(topic: topic)
        try await connection.write(greeting(connection))
        while try await connection.readLine() != nil {}
    }
}
