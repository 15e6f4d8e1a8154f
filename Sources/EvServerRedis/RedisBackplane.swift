internal import CHiredis
import EvServer
import Logging
import Synchronization

/// A `ConnectionBackplane` over Redis pub/sub (hiredis, on one of the servers' own libev loops): every
/// process and host whose servers use the same `RedisURL` reaches the others' connections with
/// `send(_:to:)` and `broadcast(_:topic:except:)`.
///
/// ```swift
/// let backplane = RedisBackplane(url: try RedisURL(parsing: "redis://10.0.0.5:6379/chat"))
/// let servers = try ServerGroup.streamServers(
///     loops: 4, configuration: ServerConfiguration(address: address, mode: .async),
///     handler: .async { ChatHandler() }, backplane: backplane
/// )
/// ```
///
/// - Runs on the loop of the first server group attached (no thread or loop of its own); if that group
///   closes first, it moves to the next group's loop.
/// - Order: each sender's messages are published in order on one connection, one channel per topic and one
///   per node (`RedisWire`), so receivers see them in that order.
/// - Local first: local receivers get messages directly (not through Redis), and a node ignores its own
///   echo; while Redis is away local delivery goes on, and what was meant for other nodes is lost and
///   counted (`messagesLost`): at most once, never replayed late.
/// - Away: reconnects after 0.1 s, doubling up to 2 s; subscriptions are restored; `onStatus` hears
///   `.unreachable` once per outage and `.connected` (with the outage's lost count) when it is back.
/// - Names: each connect attempt looks the URL's host up again, off the loop (`RedisResolver`), then tries
///   its addresses in order (`RedisAddressQueue`); only when every one failed is the attempt a failed one.
/// - Every node hears every topic (one pattern subscription: no subscribe race when a client joins a
///   topic) and drops what no local connection joined.
///
/// `@unchecked Sendable`: `state` is behind a `Lock`; counters are atomic; the session is reached only on
/// its loop's thread (`LoopBound`).
public final class RedisBackplane: ConnectionBackplane, @unchecked Sendable {
    /// What `onStatus` hears, on the backplane's loop thread.
    public enum Status: Sendable, Equatable {
        /// Both connections serve again (or for the first time); `lostDuringOutage` messages for other
        /// nodes were dropped while they did not.
        case connected(lostDuringOutage: Int)
        /// The connection failed or went (once per outage); local delivery goes on, retries follow.
        case unreachable(reason: String)
    }

    /// The Redis server both connections use.
    public let url: RedisURL
    private let onStatus: @Sendable (Status) -> Void
    private let logger: Logger

    private struct State {
        var nodes: [BackplaneNode] = []
        var numbers: Set<UInt32> = []
        var session: LoopBound<RedisSession>?
    }
    private let state = Lock(State())
    /// The host's addresses for node numbers (`countNode`), looked up once.
    private let startLookup = Lock<Result<[String], RedisLookupError>?>(nil)
    private let lost = Atomic<Int>(0)
    private let published = Atomic<Int>(0)
    private let received = Atomic<Int>(0)

    /// - Parameters:
    ///   - url: the Redis server and the channels' prefix.
    ///   - logger: `debug` for each status change.
    ///   - onStatus: told when Redis becomes unreachable (once per outage) and reachable again.
    public init(url: RedisURL, logger: Logger = .evserver, onStatus: @escaping @Sendable (Status) -> Void = { _ in }) {
        self.url = url
        self.logger = logger
        self.onStatus = onStatus
    }

    /// Messages for other nodes dropped because Redis was away (or went before taking them).
    public var messagesLost: Int { lost.load(ordering: .relaxed) }
    /// Messages published to Redis.
    public var messagesPublished: Int { published.load(ordering: .relaxed) }
    /// Messages heard from Redis (own echoes included).
    public var messagesReceived: Int { received.load(ordering: .relaxed) }

    // MARK: ConnectionBackplane

    /// A number no other node on this Redis has: the next value of the counter `PREFIX:nodes` (one `INCR`
    /// on a short-lived connection), so unique across every process and host until a million groups have
    /// started. Blocks the caller (at start, before serving) for at most a second for the host's lookup
    /// (once for all groups, off the loop: `RedisResolver`) and two seconds per address (connect, answer).
    /// When Redis cannot be reached at start, one drawn at random (unique in this process only; logged).
    public func makeNodeNumber() -> UInt32 {
        let counted = countNode()
        let largest = Int64(ConnectionIDSpace.largestNode)
        let number = state.withLock { state -> UInt32 in
            var number = counted > 0 ? UInt32((counted - 1) % largest + 1) : 0
            while number == 0 || state.numbers.contains(number) {
                number = UInt32.random(in: 1...ConnectionIDSpace.largestNode)
            }
            state.numbers.insert(number)
            return number
        }
        if counted <= 0 {
            logger.warning(
                "Redis not reachable at start: node number drawn at random (another host may draw the same one)",
                metadata: ["redis": "\(url)", "node": "\(number)"]
            )
        }
        return number
    }

    /// `INCR PREFIX:nodes` at the host's addresses in order, until one answers: its value, or -1.
    /// The host's lookup is done once for every group's number (the first caller waits, the others take its
    /// answer): the start waits at most a second for it however many listeners there are.
    private func countNode() -> Int64 {
        let lookup = startLookup.withLock { answer in
            if answer == nil { answer = RedisResolver.resolve(url, within: 1) }
            return answer!
        }
        guard case .success(let addresses) = lookup else { return -1 }
        for address in addresses {
            let counted = address.withCString { host in
                "\(url.prefix):nodes".withCString { CHiredis_increment(host, CInt(url.port), 1000, $0) }
            }
            if counted > 0 { return counted }
        }
        return -1
    }

    /// Adds a node: the first one's loop runs the Redis connections; a later one's channel is subscribed.
    public func attach(_ node: BackplaneNode) {
        let (session, isNew) = state.withLock { state -> (LoopBound<RedisSession>, Bool) in
            state.nodes.append(node)
            if let session = state.session { return (session, false) }
            state.session = makeSession(on: node.loop)
            return (state.session!, true)
        }
        session.loop.execute { isNew ? session.value.connect() : session.value.subscribe(node: node.number, true) }
    }

    /// Unsubscribes the node's channel; if the Redis connections run on its loop, they close there (before
    /// the loop goes) and reopen on another node's loop, if any is left.
    public func detach(_ node: BackplaneNode) {
        let (session, next) = state.withLock { state -> (LoopBound<RedisSession>?, LoopBound<RedisSession>?) in
            state.nodes.removeAll { $0 === node }
            guard let session = state.session, session.loop === node.loop else { return (state.session, nil) }
            state.session = state.nodes.first.map { makeSession(on: $0.loop) }
            return (session, state.session)
        }
        guard let session else { return }
        if session.loop === node.loop {
            session.value.close()  // on this loop's thread, before the loop goes
            next.map { next in next.loop.execute { next.value.connect() } }
        } else {
            session.loop.execute { session.value.subscribe(node: node.number, false) }
        }
    }

    /// Publishes on the channel of the message's target; while Redis is away, counts it as lost.
    public func publish(_ message: BackplaneMessage) {
        guard let session = state.withLock({ $0.session }) else { return countLost() }
        if session.loop.inLoop { return session.value.publish(message) }
        session.loop.execute { session.value.publish(message) }
    }

    // MARK: For the session

    private func makeSession(on loop: EventLoop) -> LoopBound<RedisSession> {
        LoopBound(RedisSession(loop: loop, backplane: self), loop: loop)
    }

    var nodeNumbers: [UInt32] { state.withLock { $0.nodes.map(\.number) } }

    func deliver(_ message: BackplaneMessage) {
        received.add(1, ordering: .relaxed)
        for node in state.withLock({ $0.nodes }) { node.deliver(message) }
    }

    func report(_ status: Status) {
        logger.debug("redis backplane", metadata: ["redis.url": "\(url)", "redis.status": "\(status)"])
        onStatus(status)
    }

    func countLost() { lost.add(1, ordering: .relaxed) }
    func countPublished() { published.add(1, ordering: .relaxed) }
}
