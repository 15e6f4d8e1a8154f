import EvServer
import EvservedKit

#if canImport(Glibc)
import Glibc
#endif

/// What the daemon's main process tells systemd (`SystemdNotifier`, `NOTIFY_SOCKET`): `READY=1` with
/// "serving N listeners" once every listener serves (after the listening lines), `WATCHDOG=1` every half
/// of `WATCHDOG_USEC`, `STOPPING=1` and "draining N connections" (updated as they end) during the drain.
/// Nothing without `NOTIFY_SOCKET`, and nothing from a worker: its supervisor is the main process. After a
/// reload the new process sends `MAINPID=` with its `READY=1`, and the old one falls silent.
///
/// The watchdog is fed from the main thread's wait for signals (`tick`), the thread that stops and drains
/// the daemon: a daemon whose main thread hangs cannot be stopped cleanly, and systemd restarts it. It does
/// not prove each loop thread turns (a loop stuck in a handler is what `--idle-timeout` and the drain
/// deadline bound). Used on the main thread only.
final class ServiceNotifications {
    /// `nil` without `NOTIFY_SOCKET`, in a worker, and once a reload's new process has taken over.
    private(set) var notifier: SystemdNotifier?
    private var lastWatchdog = MonotonicClock.now
    private var lastStatus = ""

    init(worker: Bool) {
        notifier = worker ? nil : SystemdNotifier.fromEnvironment()
    }

    /// For `Signals.waitForStop(tick:)`: wakes the wait often enough for the watchdog; `nil` without one.
    var tick: (every: Double, body: () -> Void)? {
        notifier?.watchdogInterval.map { interval in (interval, { self.feedWatchdog() }) }
    }

    /// Every listener serves. A reload's new process also says it is the service's main process now.
    func ready(_ listeners: [ServingListener]) {
        if Reload.predecessor != nil { notifier?.notifyMainPID(getpid()) }
        notifier?.ready(status: "serving \(listeners.count) listener\(listeners.count == 1 ? "" : "s")")
    }

    /// A reload's new process serves and is the main process now: this one, draining, tells systemd
    /// nothing more (its `STOPPING=1` would stop the service).
    func handedOver() {
        notifier = nil
    }

    /// The drain began.
    func stopping(_ listeners: [ServingListener]) {
        lastStatus = Self.draining(listeners)
        notifier?.stopping(status: lastStatus)
    }

    /// During the drain: the watchdog when due, and the status when the open connections changed.
    func draining(_ listeners: [ServingListener]) {
        guard let notifier else { return }
        feedWatchdog()
        let status = Self.draining(listeners)
        if status != lastStatus {
            lastStatus = status
            notifier.status(status)
        }
    }

    /// `WATCHDOG=1` when half the watchdog time has passed since the last.
    func feedWatchdog() {
        guard let notifier, let interval = notifier.watchdogInterval else { return }
        guard MonotonicClock.now - lastWatchdog >= interval * 0.9 else { return }
        lastWatchdog = MonotonicClock.now
        notifier.watchdog()
    }

    private static func draining(_ listeners: [ServingListener]) -> String {
        // A group's servers count the connections of all its loops: the first one's figure is the listener's.
        let open = listeners.compactMap { $0.servers.first as? StreamServer }.map(\.connectionsOpen).reduce(0, +)
        return "draining \(open) connection\(open == 1 ? "" : "s")"
    }
}
