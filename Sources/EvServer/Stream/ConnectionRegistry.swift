/// Identifies an open connection within its server (event and async modes), for sending to it from
/// anywhere: `StreamServer.send(_:to:)`.
public typealias ConnectionID = UInt64

/// The open event-mode and async connections of one server and the topics they joined: what handlers that
/// talk to each other need (a chat's rooms, a pub/sub's channels). Loop-confined, owned by the core.
///
/// Messages from other connections are queued on the receiver like its own replies; a receiver that lets
/// more than `slowConsumerLimit` bytes pile up is closed, so one stuck client cannot grow the server's memory.
struct ConnectionRegistry {
    let connections = ConnectionIndex<StreamConnection>()
    private var topics: [String: Set<ConnectionID>] = [:]
    private var topicsOf: [ConnectionID: Set<String>] = [:]
    let slowConsumerLimit: Int

    init(slowConsumerLimit: Int) { self.slowConsumerLimit = slowConsumerLimit }

    mutating func add(_ connection: StreamConnection) { connections.insert(connection) }

    mutating func remove(_ id: ConnectionID) {
        connections.remove(id)
        guard !topicsOf.isEmpty else { return }  // no hashing when no connection joined a topic
        for topic in topicsOf.removeValue(forKey: id) ?? [] {
            topics[topic]?.remove(id)
            if topics[topic]?.isEmpty == true { topics[topic] = nil }
        }
    }

    mutating func removeAll() -> [StreamConnection] {
        defer { connections.removeAll(); topics.removeAll(); topicsOf.removeAll() }
        return connections.all
    }

    mutating func join(_ id: ConnectionID, topic: String) {
        guard connections[id] != nil else { return }
        topics[topic, default: []].insert(id)
        topicsOf[id, default: []].insert(topic)
    }

    mutating func leave(_ id: ConnectionID, topic: String) {
        topics[topic]?.remove(id)
        topicsOf[id]?.remove(topic)
    }

    /// The connections in `topic`, or all when `nil`.
    func members(of topic: String?) -> [StreamConnection] {
        guard let topic else { return connections.all }
        return (topics[topic] ?? []).compactMap { connections[$0] }
    }

    /// Queues `bytes` on `connection`, closing it when it is too far behind.
    func deliver(_ bytes: [UInt8], to connection: StreamConnection) {
        guard connection.bufferedByteCount + bytes.count <= slowConsumerLimit else {
            connection.finish(error: ConnectionError(
                .replyDropped,
                "\(connection.clientAddress) is too slow: more than \(slowConsumerLimit) bytes waited for it"
            ), reason: .slowConsumer)
            return
        }
        connection.write(bytes)
    }
}
