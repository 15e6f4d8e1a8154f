import EvServer

/// How backplane messages travel over Redis pub/sub: which channel, and the bytes published.
///
/// Channels (`PREFIX` from the URL):
/// - `PREFIX:t:TOPIC` — `broadcast(_:topic:except:)` to a topic: one channel per topic, so the messages
///   of a topic keep their order;
/// - `PREFIX:a` — `broadcast` to every connection;
/// - `PREFIX:n:NODE` — `send(_:to:)` to a connection of node `NODE` (decimal): one channel per node.
///
/// Payload: the origin node (4 bytes, big-endian), a connection id (8 bytes, big-endian: the target of a
/// `send`, the `except` of a broadcast, 0 for none), then the message's bytes.
public struct RedisWire: Sendable {
    /// What every channel name starts with.
    public let prefix: String

    /// The channel names and payloads of applications using `prefix`.
    public init(prefix: String) { self.prefix = prefix }

    /// The pattern that covers every topic channel.
    public var topicPattern: String { "\(prefix):t:*" }
    /// The channel of broadcasts to every connection.
    public var everyoneChannel: String { "\(prefix):a" }
    /// The channel of direct sends to `node`'s connections.
    public func nodeChannel(_ node: UInt32) -> String { "\(prefix):n:\(node)" }

    /// The channel and payload that carry `message`.
    public func encode(_ message: BackplaneMessage) -> (channel: String, payload: [UInt8]) {
        let channel: String
        let id: ConnectionID
        switch message.target {
        case .connection(let target):
            channel = nodeChannel(ConnectionIDSpace.node(of: target))
            id = target
        case .broadcast(let topic, let except):
            channel = topic.map { "\(prefix):t:\($0)" } ?? everyoneChannel
            id = except ?? 0
        }
        var payload: [UInt8] = []
        payload.reserveCapacity(12 + message.bytes.count)
        for shift in stride(from: 24, through: 0, by: -8) {
            payload.append(UInt8(truncatingIfNeeded: message.origin >> shift))
        }
        for shift in stride(from: 56, through: 0, by: -8) { payload.append(UInt8(truncatingIfNeeded: id >> shift)) }
        payload.append(contentsOf: message.bytes)
        return (channel, payload)
    }

    /// The message a channel and payload carry; `nil` for a channel or payload not of this shape.
    public func decode(channel: some Collection<UInt8>, payload: UnsafeRawBufferPointer) -> BackplaneMessage? {
        guard payload.count >= 12 else { return nil }
        let origin = payload[0..<4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let id = payload[4..<12].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let bytes = Array(payload[12...])
        let name = String(decoding: channel, as: UTF8.self)
        let target: BackplaneMessage.Target
        if name == everyoneChannel {
            target = .broadcast(topic: nil, except: id == 0 ? nil : id)
        } else if name.hasPrefix("\(prefix):t:") {
            target = .broadcast(topic: String(name.dropFirst(prefix.count + 3)), except: id == 0 ? nil : id)
        } else if name.hasPrefix("\(prefix):n:") {
            target = .connection(id)
        } else {
            return nil
        }
        return BackplaneMessage(target: target, origin: origin, bytes: bytes)
    }
}
