@testable import EvServer
import EvServer
import EvServerRedis
import Testing

/// A backplane inside the process that hands every message to every attached node, the sender's included:
/// what a pub/sub transport does (the sender hears its own echo), without the network.
///
/// `@unchecked Sendable`: its state is behind `Lock`s.
final class EchoingBackplane: ConnectionBackplane, @unchecked Sendable {
    private let nodes = Lock<[BackplaneNode]>([])
    private let next = Lock<UInt32>(0)

    func makeNodeNumber() -> UInt32 { next.withLock { $0 += 1; return $0 } }
    func attach(_ node: BackplaneNode) { nodes.withLock { $0.append(node) } }
    func detach(_ node: BackplaneNode) { nodes.withLock { $0.removeAll { $0 === node } } }
    func publish(_ message: BackplaneMessage) {
        for node in nodes.withLock({ $0 }) { node.deliver(message) }
    }
}

@Suite("connection ids and the backplane")
struct BackplaneTests {
    @Test("an id carries its node, member and kind; numbers wrap within the member")
    func idSpace() {
        let id = ConnectionIDSpace.firstID(node: ConnectionIDSpace.largestNode, member: 1023, blocking: true)
        #expect(ConnectionIDSpace.node(of: id) == ConnectionIDSpace.largestNode)
        #expect(ConnectionIDSpace.member(of: id) == 1023)
        #expect(ConnectionIDSpace.isBlocking(id))
        let event = ConnectionIDSpace.firstID(node: 7, member: 3, blocking: false)
        #expect(!ConnectionIDSpace.isBlocking(event) && ConnectionIDSpace.member(of: event) == 3)
        let last = event - 1 + ConnectionIDSpace.largestNumber
        #expect(ConnectionIDSpace.next(after: last) == event, "wraps to number 1 of the same member and node")
        #expect(ConnectionIDSpace.node(of: ConnectionIDSpace.next(after: event)) == 7)
    }

    @Test("a broadcast reaches every other node's connections once, and its own node's once (echo ignored)")
    func echoIgnored() throws {
        let configuration = ServerConfiguration(address: try loopback(), mode: .async)
        let backplane = EchoingBackplane()
        let first = try StreamServer(
            configuration: configuration, handler: .async { TopicMember(topic: "room") }, logger: .silent,
            backplane: backplane
        )
        let second = try StreamServer(
            configuration: configuration, handler: .async { TopicMember(topic: "room") }, logger: .silent,
            backplane: backplane
        )
        defer { first.close(); second.close() }
        try first.start()
        try second.start()
        let a = try TestClient(first.localAddress)
        let b = try TestClient(second.localAddress)
        let idA = ConnectionID(try a.readLine().dropFirst(3).dropLast())!
        let idB = ConnectionID(try b.readLine().dropFirst(3).dropLast())!
        #expect(ConnectionIDSpace.node(of: idA) != ConnectionIDSpace.node(of: idB))
        first.broadcast(Array("one\n".utf8), topic: "room")
        first.broadcast(Array("two\n".utf8), topic: "room")
        #expect(try a.readLine() == "one\n" && a.readLine() == "two\n", "once each: the echo is dropped")
        #expect(try b.readLine() == "one\n" && b.readLine() == "two\n")
        first.send(Array("direct\n".utf8), to: idB)  // another node's id: through the backplane
        #expect(try b.readLine() == "direct\n")
        second.broadcast(Array("not a\n".utf8), topic: "room", except: idA)
        first.send(Array("last\n".utf8), to: idA)
        #expect(try a.readLine() == "last\n", "except holds across nodes")
    }

    @Test("Redis channels and payloads carry every kind of message back unchanged")
    func wire() {
        let wire = RedisWire(prefix: "p")
        let messages = [
            BackplaneMessage(target: .broadcast(topic: "room:1", except: 42), origin: 9, bytes: Array("hi\n".utf8)),
            BackplaneMessage(target: .broadcast(topic: nil, except: nil), origin: 1, bytes: []),
            BackplaneMessage(
                target: .connection(ConnectionIDSpace.firstID(node: 77, member: 2, blocking: true)), origin: 5,
                bytes: [0, 255, 10]
            ),
        ]
        for message in messages {
            let (channel, payload) = wire.encode(message)
            let decoded = payload.withUnsafeBytes { wire.decode(channel: Array(channel.utf8), payload: $0) }
            #expect(decoded == message)
        }
        #expect(wire.encode(messages[2]).channel == "p:n:77")
        #expect([UInt8]().withUnsafeBytes { wire.decode(channel: Array("p:a".utf8), payload: $0) } == nil)
    }

    @Test("redis:// URLs: host, port, prefix; every bad part is named")
    func urls() throws {
        let url = try RedisURL(parsing: "redis://127.0.0.1:6380/chat")
        #expect(url == RedisURL(host: "127.0.0.1", port: 6380, prefix: "chat"))
        #expect(try RedisURL(parsing: "redis://[::1]").description == "redis://[::1]:6379/evserver")
        let bad = [
            "http://h:1", "redis://", "redis://h:0", "redis://h:x", "redis://h:1/a b", "redis://[::1", "redis://a:b:c",
        ]
        for bad in bad {
            #expect(throws: RedisURLError.self) { try RedisURL(parsing: bad) }
        }
    }
}
