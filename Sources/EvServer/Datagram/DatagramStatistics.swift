import Synchronization

/// What a datagram server did with the datagrams it received, since it was created.
///
/// Nothing is dropped silently: every datagram not handed to a handler, and every reply not sent, is
/// counted here under the reason.
public struct DatagramStatistics: Sendable, Equatable {
    /// Datagrams handed to a handler.
    public var handled = 0
    /// Dropped whole because they were larger than `maximumDatagramSize`.
    public var oversized = 0
    /// Dropped because `verifyRequest` refused the sender.
    public var rejected = 0
    /// Dropped because the pool's queue was full (`.pool` mode).
    public var droppedPoolFull = 0
    /// Dropped because the system could not start a thread for them (`.thread` mode under a process or
    /// memory limit).
    public var droppedNoThread = 0
    /// Replies sent.
    public var repliesSent = 0
    /// Replies not sent: to a Unix client that did not bind a path of its own, so has no address.
    public var repliesUnaddressable = 0
    /// Replies the kernel refused (peer gone, network unreachable, too large, send buffer full too long).
    public var repliesFailed = 0

    /// All counts zero.
    public init() {}
}

/// The live counters behind `DatagramStatistics`, updated by the loop thread and by worker threads.
///
/// What the loop counts per datagram (handled, replies sent) it keeps in counters of its own that only it
/// writes: a relaxed load and store, not a locked read-modify-write; `snapshot` adds them to the shared ones.
final class DatagramCounters: Sendable {
    let handled = Atomic<Int>(0)
    /// Written by the loop thread only (`countHandledOnLoop`).
    private let handledOnLoop = Atomic<Int>(0)
    /// Written by the loop thread only (`countSentOnLoop`).
    private let repliesSentOnLoop = Atomic<Int>(0)
    let oversized = Atomic<Int>(0)
    let rejected = Atomic<Int>(0)
    let droppedPoolFull = Atomic<Int>(0)
    let droppedNoThread = Atomic<Int>(0)
    let repliesSent = Atomic<Int>(0)
    let repliesUnaddressable = Atomic<Int>(0)
    let repliesFailed = Atomic<Int>(0)

    /// A datagram handed to a handler, counted by the loop thread (and no other).
    @inline(__always)
    func countHandledOnLoop() {
        handledOnLoop.store(handledOnLoop.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
    }

    /// A reply sent by the loop thread (and no other).
    @inline(__always)
    func countSentOnLoop() {
        repliesSentOnLoop.store(repliesSentOnLoop.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
    }

    var snapshot: DatagramStatistics {
        var statistics = DatagramStatistics()
        statistics.handled = handled.load(ordering: .relaxed) + handledOnLoop.load(ordering: .relaxed)
        statistics.oversized = oversized.load(ordering: .relaxed)
        statistics.rejected = rejected.load(ordering: .relaxed)
        statistics.droppedPoolFull = droppedPoolFull.load(ordering: .relaxed)
        statistics.droppedNoThread = droppedNoThread.load(ordering: .relaxed)
        statistics.repliesSent = repliesSent.load(ordering: .relaxed) + repliesSentOnLoop.load(ordering: .relaxed)
        statistics.repliesUnaddressable = repliesUnaddressable.load(ordering: .relaxed)
        statistics.repliesFailed = repliesFailed.load(ordering: .relaxed)
        return statistics
    }
}

extension Atomic<Int> {
    /// Adds `count` (relaxed: the counters order nothing); returns the new value.
    @discardableResult
    func increment(by count: Int = 1) -> Int {
        add(count, ordering: .relaxed).newValue
    }
}
