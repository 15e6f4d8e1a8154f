#if canImport(Glibc)
import Glibc
#endif

/// A pthread mutex and a condition variable on the monotonic clock, in heap memory (pthread objects must
/// not move): what `Monitor` and `WorkQueueLock` are built on. Its owner locks `mutex` around each use.
struct MutexCondition: ~Copyable {
    let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
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

    /// With `mutex` held: sleeps until woken, or until `deadline` (monotonic seconds) when there is one.
    /// - Returns: `false` when the deadline passed.
    func sleep(until deadline: Double?) -> Bool {
        guard let deadline else {
            pthread_cond_wait(condition, mutex)
            return true
        }
        var until = MonotonicClock.deadline(at: deadline)
        return pthread_cond_timedwait(condition, mutex, &until) != ETIMEDOUT
    }
}
