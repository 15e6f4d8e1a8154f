#if canImport(Glibc)
import Glibc
#endif

/// A value guarded by a mutex, with a condition variable for threads that wait for the value to change.
///
/// Every `withLock` that may change the state wakes all waiters when it returns, so a waiter only needs a
/// predicate. It is used for lifecycle state and queues that other threads block on (shutdown waiting for
/// the loop, close waiting for workers, pool workers waiting for connections); the hot paths of the loop
/// use nothing of it.
///
/// `@unchecked Sendable`: `state` is read and written only between `pthread_mutex_lock` and
/// `pthread_mutex_unlock` on `mutex`.
final class Monitor<State>: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // Unchecked: only touched with `mutex` held, which already makes each access exclusive (the runtime's
    // check cost ~80 instructions a lock, twice per connection in the connection limits).
    @exclusivity(unchecked) private var state: State

    init(_ initial: State) {
        state = initial
        precondition(pthread_mutex_init(mutex, nil) == 0, "pthread_mutex_init failed")
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        precondition(pthread_cond_init(condition, &attributes) == 0, "pthread_cond_init failed")
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Runs `body` with the state locked, then wakes every thread waiting in `wait`.
    @discardableResult
    func withLock<R>(_ body: (inout State) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer {
            pthread_cond_broadcast(condition)
            pthread_mutex_unlock(mutex)
        }
        return try body(&state)
    }

    /// Blocks until `predicate` holds, then runs `body` with the state still locked.
    ///
    /// - Parameter timeout: seconds to wait at most; `nil` waits forever.
    /// - Returns: `body`'s result, or `nil` when the timeout passed first.
    func wait<R>(
        until predicate: (State) -> Bool,
        timeout: Double? = nil,
        then body: (inout State) throws -> R
    ) rethrows -> R? {
        pthread_mutex_lock(mutex)
        defer {
            pthread_cond_broadcast(condition)
            pthread_mutex_unlock(mutex)
        }
        let deadline = timeout.map { MonotonicClock.now + max(0, $0) }
        while !predicate(state) {
            if let deadline {
                var until = MonotonicClock.deadline(at: deadline)
                let result = pthread_cond_timedwait(condition, mutex, &until)
                if result == ETIMEDOUT && !predicate(state) { return nil }
            } else {
                pthread_cond_wait(condition, mutex)
            }
        }
        return try body(&state)
    }
}
