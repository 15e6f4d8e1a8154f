#if canImport(Glibc)
import Glibc
#endif

/// A value guarded by a mutex, with a condition variable that a change signals only when it asks to, and
/// only when some thread waits: the hand-off of work between threads (the worker pool, reused threads),
/// where `Monitor`'s broadcast on every change woke every idle worker for each job.
///
/// `@unchecked Sendable`: `state` and `waiters` are read and written only between `pthread_mutex_lock` and
/// `pthread_mutex_unlock` on `mutex`.
final class WorkQueueLock<State>: @unchecked Sendable {
    /// Whom a change wakes.
    enum Wake {
        case none
        /// One waiting thread (a job was queued).
        case one
        /// Every waiting thread (stopping).
        case all
    }

    private let lock = MutexCondition()
    private var mutex: UnsafeMutablePointer<pthread_mutex_t> { lock.mutex }
    private var condition: UnsafeMutablePointer<pthread_cond_t> { lock.condition }
    // Unchecked: only touched with `mutex` held, which already makes each access exclusive.
    @exclusivity(unchecked) private var state: State
    /// Threads blocked in `wait`: a change that finds none signals nothing (no system call).
    @exclusivity(unchecked) private var waiters = 0

    init(_ initial: State) {
        state = initial
    }

    /// Runs `body` with the state locked, then wakes whom `wake` names, if anyone waits.
    @discardableResult
    func withLock<R>(waking wake: Wake = .none, _ body: (inout State) throws -> R) rethrows -> R {
        try update { state in (try body(&state), wake) }
    }

    /// Runs `body` with the state locked; `body` also says whom to wake, if anyone waits.
    func update<R>(_ body: (inout State) throws -> (R, Wake)) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        let (result, wake) = try body(&state)
        if waiters > 0 {
            switch wake {
            case .none: break
            case .one: pthread_cond_signal(condition)
            case .all: pthread_cond_broadcast(condition)
            }
        }
        return result
    }

    /// Blocks until `predicate` holds (at once when it already does: no sleep), then runs `body` with the
    /// state still locked. Wakes no one.
    ///
    /// - Parameter timeout: seconds to wait at most; `nil` waits forever.
    /// - Returns: `body`'s result, or `nil` when the timeout passed first.
    func wait<R>(
        until predicate: (State) -> Bool, timeout: Double? = nil, then body: (inout State) throws -> R
    ) rethrows -> R? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        let deadline = timeout.map { MonotonicClock.now + max(0, $0) }
        while !predicate(state) {
            waiters += 1
            let woken = lock.sleep(until: deadline)
            waiters -= 1
            if !woken && !predicate(state) { return nil }
        }
        return try body(&state)
    }
}
