@testable import EvServer
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("the connection limits' open count and the slab of read watchers")
struct ConnectionLimitsTests {
    @Test("a release on another thread wakes waitUntilNoneOpen at once, not at its timeout")
    func lastReleaseWakesTheWaiter() throws {
        let limits = ConnectionLimits(maximumConnections: 2, maximumPerClient: nil)
        let client = try SocketAddress(host: "127.0.0.1", port: 4000)
        #expect(limits.admit(client) && limits.admit(client))
        #expect(limits.isFull && limits.openCount == 2)
        #expect(!limits.waitUntilNoneOpen(timeout: 0.05), "two are open: the wait times out")
        let releaser = try PosixThread.spawn(name: "releaser") {
            // Only once the waiter waits (its count is read by the release), so the wake is what ends it.
            while !limits.hasWaiters { sched_yield() }
            _ = limits.release(client)
            _ = limits.release(client)
        }
        let started = MonotonicClock.now
        let noneOpen = limits.waitUntilNoneOpen(timeout: 30)
        let waited = MonotonicClock.now - started
        PosixThread.join(releaser)
        #expect(noneOpen && limits.openCount == 0)
        #expect(waited < 10, "woken by the last release, not by the 30 s timeout (waited \(waited) s)")
    }

    @Test("per-client counts apply only with maximumPerClient, and a freed slot at the limit is announced")
    func perClientAndSlotFreed() throws {
        let limits = ConnectionLimits(maximumConnections: 2, maximumPerClient: 1)
        let first = try SocketAddress(host: "127.0.0.1", port: 4000)
        let second = try SocketAddress(host: "127.0.0.2", port: 4000)
        let freed = Lock(0)
        limits.join(freed, onSlotFreed: { freed.withLock { $0 += 1 } })
        #expect(limits.admit(first) && !limits.admit(first), "one connection per client")
        #expect(limits.admit(second) && limits.isFull)
        limits.releaseAndNotify(second)
        #expect(freed.withLock { $0 } == 1 && !limits.isFull && limits.openCount == 1)
        #expect(limits.admit(second), "the client's count went with its connection")
        let unlimited = ConnectionLimits(maximumConnections: nil, maximumPerClient: nil)
        #expect(unlimited.admit(first) && unlimited.admit(first) && unlimited.openCount == 2)
    }

    @Test("the slab hands out distinct zeroed structs across chunks and reuses what comes back")
    func slabReuses() {
        let slab = WatcherSlab()
        let taken = (0..<150).map { _ in slab.take() }
        #expect(Set(taken).count == 150)
        #expect(taken.allSatisfy { $0.pointee.data == nil && $0.pointee.fd == 0 && $0.pointee.active == 0 })
        for raw in taken { raw.pointee.data = UnsafeMutableRawPointer(raw) }  // as a connection does
        for raw in taken.prefix(100) { slab.give(raw) }
        let again = (0..<100).map { _ in slab.take() }
        #expect(Set(again) == Set(taken.prefix(100)), "what came back is handed out again")
        #expect(again.allSatisfy { $0.pointee.data == nil }, "zeroed again: the free list's links are gone")
        for raw in again + taken.suffix(50) { slab.give(raw) }
    }
}
