#if canImport(Glibc)
import Glibc
#endif

/// The daemon's signal handling: SIGPIPE ignored; SIGINT and SIGTERM blocked in every thread and taken
/// by `sigwait` on the main thread, so they have exactly one owner and no handler runs in signal context.
enum Signals {
    /// Call first thing, before any thread exists: threads inherit the mask.
    static func takeOwnership() {
        signal(SIGPIPE, SIG_IGN)
        var set = stopSignals
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Also blocks SIGCHLD, for a supervisor that takes it with `sigtimedwait`.
    static func takeChildSignals() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGCHLD)
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Blocks until SIGINT or SIGTERM arrives; returns its name.
    static func waitForStop() -> String {
        var set = stopSignals
        var received: CInt = 0
        while sigwait(&set, &received) != 0 {}
        return received == SIGINT ? "SIGINT" : "SIGTERM"
    }

    /// Waits up to `timeout` seconds for SIGINT or SIGTERM; returns its name, or `nil` when none came.
    static func waitForStop(timeout: Double) -> String? {
        var set = stopSignals
        var wait = timespec(tv_sec: Int(timeout), tv_nsec: Int((timeout - timeout.rounded(.down)) * 1e9))
        let received = sigtimedwait(&set, nil, &wait)
        guard received > 0 else { return nil }
        return received == SIGINT ? "SIGINT" : "SIGTERM"
    }

    private static var stopSignals: sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        return set
    }
}
