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

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // Unchecked: only touched with `mutex` held, which already makes each access exclusive.
    @exclusivity(unchecked) private var state: State
    /// Threads blocked in `wait`: a change that finds none signals nothing (no system call).
    @exclusivity(unchecked) private var waiters = 0

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
            defer { waiters -= 1 }
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
