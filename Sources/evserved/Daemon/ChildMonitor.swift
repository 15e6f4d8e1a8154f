import EvServer
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The `--exec` children of this process, and the one thread that waits for them.
///
/// Why a thread of its own: the loop threads only start children (`posix_spawn` returns as soon as the child
/// exists) and never wait for one. This thread ("evserved-children") polls each child's exit descriptor (a
/// pidfd, readable once the child exits) and the read end of its standard-error pipe; it logs the child's
/// lines, reaps exactly its own children with `waitpid(pid)` (never `waitpid(-1)`, so nothing else of the
/// process is taken), logs each exit status and frees the connection's slot (`DetachedConnection.release()`,
/// which any thread may call: the server hears of it through its loop's `ev_async`). No SIGCHLD handling is
/// involved, so it cannot clash with the supervisor's: under `--workers` each worker is the parent of its
/// own children and runs its own monitor, and the supervisor's `waitpid(-1)` only ever sees workers.
final class ChildMonitor: Sendable {
    /// The process's one monitor; its thread starts with the first child.
    static let shared = ChildMonitor()

    /// A child to watch, handed over by the listener that started it.
    struct Child: Sendable {
        let pid: pid_t
        /// Its exit descriptor (a pidfd) and the read end of its standard-error pipe.
        let descriptors: (exit: CInt, standardError: CInt)
        /// The listener's logger, with the connection's peer and the child's pid.
        let logger: Logger
        let connection: DetachedConnection
        /// Called once the child is reaped (the listener's count of live children).
        let exited: @Sendable () -> Void
    }

    private struct Shared {
        var arriving: [Child] = []
        /// Children started and not yet reaped: the ones a signal may go to (their pids cannot be reused).
        var live: Set<pid_t> = []
        var threadStarted = false
        /// When the drain's deadline sends SIGTERM, and a second later SIGKILL, to every live child.
        var terminateAt: Double?
        var killAt: Double?
    }

    private let shared = Lock(Shared())
    /// A pipe that wakes the thread's `poll` when a child arrives or a deadline is set.
    private let wakeRead: CInt
    private let wakeWrite: CInt
    /// Seconds from SIGTERM to SIGKILL: the drain's grace for last replies.
    static let killGrace = 1.0

    private init() {
        var ends: [CInt] = [-1, -1]
        precondition(pipe(&ends) == 0, "cannot make the children monitor's pipe: \(String(cString: strerror(errno)))")
        for end in ends {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
        }
        (wakeRead, wakeWrite) = (ends[0], ends[1])
    }

    /// Children started and not yet reaped.
    var liveCount: Int { shared.withLock { $0.live.count } }

    /// Starts watching `child`. - Returns: `false` when the monitor's thread cannot start (the caller
    /// must then end the child itself).
    func watch(_ child: Child) -> Bool {
        let startThread = shared.withLock { shared in
            defer { shared.threadStarted = true }
            return !shared.threadStarted
        }
        if startThread, !Drain.startThread({ [self] in run() }) {
            shared.withLock { $0.threadStarted = false }
            return false
        }
        shared.withLock { shared in
            shared.arriving.append(child)
            shared.live.insert(child.pid)
        }
        wake()
        return true
    }

    /// The drain began: children still running `seconds` from now get SIGTERM, and a second later SIGKILL.
    func terminate(after seconds: Double) {
        let now = MonotonicClock.now
        shared.withLock { shared in
            shared.terminateAt = now + seconds
            shared.killAt = now + seconds + Self.killGrace
        }
        wake()
    }

    /// SIGKILL to every live child at once (the daemon exits without draining).
    func killAll() {
        shared.withLock { shared in for pid in shared.live { kill(pid, SIGKILL) } }
    }

    /// Waits until every child is reaped, at most `timeout` seconds. - Returns: whether none is left.
    func waitForAll(timeout: Double) -> Bool {
        let limit = MonotonicClock.now + timeout
        while liveCount > 0 {
            guard MonotonicClock.now < limit else { return false }
            var pause = timespec(tv_sec: 0, tv_nsec: 10_000_000)
            nanosleep(&pause, nil)
        }
        return true
    }

    private func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    /// The thread: `poll` on the wake pipe and every child's descriptors, then their lines, then their exits.
    private func run() {
        var watched: [pid_t: WatchedChild] = [:]
        while true {
            let (arriving, deadline) = takeArrivalsAndSignal()
            for child in arriving { watched[child.pid] = WatchedChild(child) }
            var descriptors = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            var owners: [(pid: pid_t, isExit: Bool)] = []
            for (pid, child) in watched {
                if !child.hasExited {
                    descriptors.append(pollfd(fd: child.child.descriptors.exit, events: Int16(POLLIN), revents: 0))
                    owners.append((pid, true))
                }
                if child.standardError >= 0 {
                    descriptors.append(pollfd(fd: child.standardError, events: Int16(POLLIN), revents: 0))
                    owners.append((pid, false))
                }
            }
            let timeout = deadline.map { CInt(max(0, min(($0 - MonotonicClock.now) * 1000 + 1, 60_000))) } ?? -1
            guard poll(&descriptors, nfds_t(descriptors.count), timeout) >= 0 else { continue }
            var drain = [UInt8](repeating: 0, count: 256)
            while read(wakeRead, &drain, drain.count) > 0 {}
            let ready = owners.indices.filter { descriptors[$0 + 1].revents != 0 }.map { owners[$0] }
            // Lines first: what a child wrote before it exited is logged before its exit.
            for owner in ready where !owner.isExit { watched[owner.pid]?.readStandardError() }
            for owner in ready where owner.isExit {
                guard let status = watched[owner.pid]?.reap() else { continue }
                shared.withLock { _ = $0.live.remove(owner.pid) }
                watched[owner.pid]?.finish(status: status)
            }
            watched = watched.filter { !$0.value.isDone }
        }
    }

    /// Takes the children handed over, sends the signals that are due. - Returns: the arrivals and the next
    /// deadline, if any.
    private func takeArrivalsAndSignal() -> ([Child], Double?) {
        shared.withLock { shared in
            let now = MonotonicClock.now
            if let at = shared.terminateAt, at <= now {
                for pid in shared.live { kill(pid, SIGTERM) }
                shared.terminateAt = nil
            }
            if let at = shared.killAt, at <= now {
                for pid in shared.live { kill(pid, SIGKILL) }
                shared.killAt = nil
            }
            defer { shared.arriving.removeAll() }
            return (shared.arriving, shared.terminateAt ?? shared.killAt)
        }
    }
}
