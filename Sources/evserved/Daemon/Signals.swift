#if canImport(Glibc)
import Glibc
#endif

/// The daemon's signal handling: SIGPIPE ignored; SIGINT, SIGTERM and SIGQUIT (stop), SIGHUP (reload),
/// SIGUSR1 (figures to the log) and the others an operator sends by habit (SIGUSR2, SIGALRM) blocked in
/// every thread and taken by `sigwait` on the main thread, so they have exactly one owner, no handler runs
/// in signal context, and none of them ends the daemon uncleanly.
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

    /// Blocks until SIGINT, SIGTERM or SIGQUIT arrives; returns its name. Any other signal of the set is
    /// given to `other` (on this thread), which returns `true` to end the wait there (a reload that handed
    /// over), else the wait goes on. With `tick`, the wait wakes at least every `tick.every` seconds to call
    /// it (the systemd watchdog).
    static func waitForStop(
        tick: (every: Double, body: () -> Void)? = nil, other: (CInt) -> Bool = { _ in false }
    ) -> String {
        var set = stopSignals
        while true {
            var received: CInt = 0
            if let tick {
                var wait = interval(tick.every)
                received = sigtimedwait(&set, nil, &wait)
                tick.body()
                guard received > 0 else { continue }  // timed out (or interrupted)
            } else {
                guard sigwait(&set, &received) == 0 else { continue }
            }
            if stops.contains(received) || other(received) { return name(received) }
        }
    }

    /// The signal's name, as logs print it.
    static func name(_ signal: CInt) -> String {
        switch signal {
        case SIGINT: return "SIGINT"
        case SIGTERM: return "SIGTERM"
        case SIGQUIT: return "SIGQUIT"
        case SIGHUP: return "SIGHUP"
        case SIGUSR1: return "SIGUSR1"
        case SIGUSR2: return "SIGUSR2"
        case SIGALRM: return "SIGALRM"
        default: return "signal \(signal)"
        }
    }

    /// The signals that stop the daemon.
    static let stops: [CInt] = [SIGINT, SIGTERM, SIGQUIT]

    /// Waits up to `timeout` seconds for a stop signal; returns its name, or `nil` when none came (other
    /// signals of the set are taken and dropped meanwhile).
    static func waitForStop(timeout: Double) -> String? {
        var set = stopSignals
        var wait = interval(timeout)
        let received = sigtimedwait(&set, nil, &wait)
        guard received > 0, stops.contains(received) else { return nil }
        return name(received)
    }

    /// `seconds` as a `timespec`, for `sigtimedwait`.
    static func interval(_ seconds: Double) -> timespec {
        timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - seconds.rounded(.down)) * 1e9))
    }

    /// Every signal the daemon takes with `sigwait`.
    private static var stopSignals: sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in stops + [SIGHUP, SIGUSR1, SIGUSR2, SIGALRM] { sigaddset(&set, signal) }
        return set
    }
}
