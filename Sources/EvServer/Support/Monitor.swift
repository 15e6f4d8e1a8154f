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
package final class Monitor<State>: @unchecked Sendable {
    private let lock = MutexCondition()
    private var mutex: UnsafeMutablePointer<pthread_mutex_t> { lock.mutex }
    private var condition: UnsafeMutablePointer<pthread_cond_t> { lock.condition }
    // Unchecked: only touched with `mutex` held, which already makes each access exclusive (the runtime's
    // check cost ~80 instructions a lock, twice per connection in the connection limits).
    @exclusivity(unchecked) private var state: State

    package init(_ initial: State) {
        state = initial
    }

    /// Runs `body` with the state locked, then wakes every thread waiting in `wait`.
    @discardableResult
    package func withLock<R>(_ body: (inout State) throws -> R) rethrows -> R {
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
    package func wait<R>(
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
            if !lock.sleep(until: deadline) && !predicate(state) { return nil }
        }
        return try body(&state)
    }
}
