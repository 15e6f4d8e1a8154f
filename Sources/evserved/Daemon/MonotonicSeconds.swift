#if canImport(Glibc)
import Glibc
#endif

/// Seconds on the monotonic clock.
enum MonotonicSeconds {
    static var now: Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
