#if canImport(Glibc)
import Glibc
#endif

/// A value guarded by a `pthread_mutex_t`: the short critical sections of hot cross-thread paths (the
/// event loop's work queue), where `Monitor`'s wake-up broadcast would be wasted work.
///
/// Not `Synchronization.Mutex`: on Linux that locks with raw futex calls ThreadSanitizer cannot see, so
/// every access it guards is reported as a race; a pthread mutex keeps the sanitizer run meaningful.
///
/// `@unchecked Sendable`: `state` is read and written only between `pthread_mutex_lock` and
/// `pthread_mutex_unlock` on `mutex`.
package final class Lock<State>: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var state: State

    package init(_ initial: State) {
        state = initial
        precondition(pthread_mutex_init(mutex, nil) == 0, "pthread_mutex_init failed")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with the state locked.
    @discardableResult
    package func withLock<R>(_ body: (inout State) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&state)
    }
}
