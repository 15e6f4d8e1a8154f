internal import CHiredis
import EvServer

/// The backplane's Redis connections on its host loop: a publisher (every `PUBLISH`, in order, on one
/// connection) and a subscriber (the topic pattern, the everyone channel and one channel per local node),
/// connected together, reconnected together with a capped back-off, and the outage accounting.
///
/// Confined to `loop`'s thread: made, used and closed there.
final class RedisSession {
    let loop: EventLoop
    private unowned let backplane: RedisBackplane
    private let wire: RedisWire
    private var publisher: RedisLink?
    private var subscriber: RedisLink?
    /// Closed links, kept until hiredis cannot call back for them (dropped at the next connect).
    private var retired: [RedisLink] = []
    private var retry: TimerWatcher!
    /// The next retry's delay: doubles from `firstDelay` up to `longestDelay`, reset once connected.
    private var delay = RedisSession.firstDelay
    static let firstDelay = 0.1
    static let longestDelay = 2.0
    private var subscribed = false
    /// Both connections serve: publishes go out, messages come in.
    private var isUp = false
    /// Messages lost since the connection went (or since the start, until the first connect).
    private var lostInOutage = 0
    private var outageReported = false
    private var isClosed = false
    /// The current attempt's addresses (`connectNext`).
    private var addresses = RedisAddressQueue([])
    /// Counts attempts: a lookup's answer for an earlier one is dropped.
    private var generation = 0

    init(loop: EventLoop, backplane: RedisBackplane) {
        self.loop = loop
        self.backplane = backplane
        wire = RedisWire(prefix: backplane.url.prefix)
        retry = TimerWatcher(loop: loop, after: delay) { [unowned self] in connect() }
    }

    // MARK: Connecting

    /// One attempt: looks the host up again (off the loop: `RedisResolver`), then tries its addresses.
    func connect() {
        loop.preconditionInLoop()
        guard !isClosed else { return }
        retired.removeAll()
        generation += 1
        let expected = generation
        // Safe against a session closed (even freed) while the lookup runs: the token holds the session
        // weakly and is read only on the loop's thread (`LoopBound`), where the session is closed and
        // released too, so it cannot go between the check and the use; a closed session or a later attempt
        // (another generation) drops the answer.
        let token = LoopBound(WeakSession(session: self), loop: loop)
        RedisResolver.resolve(backplane.url, on: loop) { answer in
            guard let session = token.value.session, !session.isClosed, session.generation == expected else { return }
            session.resolved(answer)
        }
    }

    private func resolved(_ answer: Result<[String], RedisLookupError>) {
        switch answer {
        case .success(let found):
            addresses = RedisAddressQueue(found)
            connectNext()
        case .failure(let error):
            failed(reason: error.description)
        }
    }

    /// Opens both connections to the attempt's next address, skipping those that fail at once; when none is
    /// left, the attempt failed (one step of the back-off).
    private func connectNext() {
        while let address = addresses.next() {
            let publisher = RedisLink(role: .publisher, session: self)
            let subscriber = RedisLink(role: .subscriber, session: self)
            self.publisher = publisher
            self.subscriber = subscriber
            let port = backplane.url.port
            guard let reason = publisher.open(address, port: port, on: loop)
                ?? subscriber.open(address, port: port, on: loop)
            else { return }
            closeLinks()
            addresses.failCurrent(reason)
        }
        failed(reason: addresses.reason)
    }

    func linkConnected(_ link: RedisLink) {
        guard link === subscriber else { return becameUpIfReady() }
        link.command([Array("PSUBSCRIBE".utf8), Array(wire.topicPattern.utf8)], replied: subscriberReplied)
        let channels = [wire.everyoneChannel] + backplane.nodeNumbers.map(wire.nodeChannel)
        link.command([Array("SUBSCRIBE".utf8)] + channels.map { Array($0.utf8) }, replied: subscriberReplied)
    }

    /// A connection failed or went: while the attempt's address is still being tried, the next address is;
    /// otherwise (serving, or no address left) it is an outage.
    func linkFailed(_ link: RedisLink, reason: String) {
        guard link === publisher || link === subscriber else { return }
        guard isUp || addresses.current == nil else {
            closeLinks()
            addresses.failCurrent(reason)
            return connectNext()
        }
        failed(reason: reason)
    }

    private func failed(reason: String) {
        closeLinks()
        addresses = RedisAddressQueue([])
        if isUp || !outageReported {
            isUp = false
            outageReported = true
            backplane.report(.unreachable(reason: "\(backplane.url): \(reason)"))
        }
        retry.set(after: delay)
        retry.start()
        delay = min(delay * 2, Self.longestDelay)
    }

    private func becameUpIfReady() {
        guard !isUp, subscribed, publisher?.isConnected == true else { return }
        isUp = true
        delay = Self.firstDelay
        backplane.report(.connected(lostDuringOutage: lostInOutage))
        lostInOutage = 0
        outageReported = false
    }

    private func closeLinks() {
        for link in [publisher, subscriber].compactMap({ $0 }) {
            link.close()
            retired.append(link)
        }
        publisher = nil
        subscriber = nil
        subscribed = false
    }

    /// The host node detaches: closes the connections and stops retrying. Not from a hiredis callback.
    func close() {
        loop.preconditionInLoop()
        isClosed = true
        retry.stop()
        closeLinks()
        retired.removeAll()
    }

    // MARK: Nodes of this process

    func subscribe(node: UInt32, _ wanted: Bool) {
        guard subscribed, let subscriber else { return }  // otherwise the next connect subscribes it
        let verb = wanted ? "SUBSCRIBE" : "UNSUBSCRIBE"
        subscriber.command([Array(verb.utf8), Array(wire.nodeChannel(node).utf8)], replied: subscriberReplied)
    }

    // MARK: Messages

    func publish(_ message: BackplaneMessage) {
        guard isUp, let publisher else { return countLost() }
        let (channel, payload) = wire.encode(message)
        publisher.command([Array("PUBLISH".utf8), Array(channel.utf8), payload], replied: publishReplied)
        backplane.countPublished()
    }

    func countLost() {
        lostInOutage += 1
        backplane.countLost()
    }

    func subscriberReply(_ reply: UnsafeMutablePointer<redisReply>) {
        guard let kind = CHiredis_element(reply, 0).flatMap(Self.bytes) else { return }
        switch String(decoding: kind, as: UTF8.self) {
        case "psubscribe":
            subscribed = true
            becameUpIfReady()
        case "pmessage":
            deliver(channel: CHiredis_element(reply, 2), payload: CHiredis_element(reply, 3))
        case "message":
            deliver(channel: CHiredis_element(reply, 1), payload: CHiredis_element(reply, 2))
        default:
            return
        }
    }

    private func deliver(channel: UnsafeMutablePointer<redisReply>?, payload: UnsafeMutablePointer<redisReply>?) {
        guard let channel = channel.flatMap(Self.bytes), let payload = payload.flatMap(Self.bytes),
            let message = wire.decode(channel: channel, payload: payload)
        else { return }
        backplane.deliver(message)
    }

    /// A string reply's bytes (valid during the callback).
    private static func bytes(_ reply: UnsafeMutablePointer<redisReply>) -> UnsafeRawBufferPointer? {
        guard reply.pointee.type == REDIS_REPLY_STRING, let text = reply.pointee.str else { return nil }
        return UnsafeRawBufferPointer(start: text, count: reply.pointee.len)
    }
}

/// A session held weakly: what a lookup's answer reaches it through (`RedisSession.connect`).
private struct WeakSession {
    weak var session: RedisSession?
}
