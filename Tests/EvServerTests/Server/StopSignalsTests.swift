import EvServer
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `StopSignals`: the signal is taken by the thread that waits, aimed at that thread only (`pthread_kill`),
/// so no other test sees it.
@Suite("stop signals")
struct StopSignalsTests {
    @Test("wait() returns the signal sent to the waiting thread, whether it came before or during the wait")
    func waitReturnsTheSignal() throws {
        let waiter = Lock<pthread_t?>(nil)
        let received = Lock<[CInt]>([])
        _ = PThread {
            let stop = StopSignals([SIGUSR2])
            waiter.withLock { $0 = pthread_self() }
            let first = stop.wait()
            received.withLock { $0.append(first) }
            let second = stop.wait()
            received.withLock { $0.append(second) }
        }
        #expect(waitUntil { waiter.withLock { $0 } != nil })
        let thread = try #require(waiter.withLock { $0 })
        pthread_kill(thread, SIGUSR2)
        #expect(waitUntil { received.withLock { $0 } == [SIGUSR2] })
        pthread_kill(thread, SIGUSR2)
        #expect(waitUntil { received.withLock { $0 } == [SIGUSR2, SIGUSR2] })
    }
}
