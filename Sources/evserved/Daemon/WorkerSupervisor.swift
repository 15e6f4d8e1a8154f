#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import EvServer
import EvservedKit
import Logging

/// `--workers N`: the successor of socketserver's ForkingMixIn. The supervisor binds every listener itself
/// and hands the sockets down to N worker processes (fresh executions of this program, so each starts
/// before any thread exists), which serve them with their own loops: no other process can join the port.
/// It restarts a worker that dies (with a back-off of at most `longestBackOff` seconds between tries of one
/// slot, forever), on SIGHUP replaces the workers one by one (a fresh worker serves before the one it
/// replaces drains), and on SIGTERM/SIGINT passes the signal on so that every worker drains; a second
/// signal makes them exit at once. A draining worker still there 5 s after the drain timeout (hung, or
/// stopped) is killed.
///
/// Runs on the main thread of a process that has blocked SIGINT, SIGTERM and SIGCHLD and starts no thread.
struct WorkerSupervisor {
    /// The worker's number, in its environment.
    static let workerVariable = "EVSERVED_WORKER"
    /// The supervisor's pid, in a worker's environment: the worker ends (drains) when that process dies.
    static let supervisorVariable = "EVSERVED_SUPERVISOR"
    /// The descriptors of the handed-down sockets, in `--listen` order, in a worker's environment.
    static let socketsVariable = "EVSERVED_LISTEN_FDS"
    /// The longest wait before a worker that keeps dying is started again.
    private static let longestBackOff = 4.0

    private let count: Int
    private let logger: Logger
    /// How long a draining worker may take before it is killed: the drain timeout, and a few seconds for
    /// its programs' SIGKILL (`--exec`) and its exit.
    private let drainAllowance: Double
    /// The file workers are started from (read at start: a binary replaced on disk since is the new one).
    private let executable = ChildProcess.currentExecutable()
    /// The worker's command line less `--listen` (the supervisor adds the bound URLs).
    private let baseArguments: [String]
    /// Each listener's socket (close-on-exec, above the numbers workers get them at) and its `--listen`
    /// text for the workers (the bound address, with the listener's own service and mode).
    private let sockets: [(descriptor: CInt, listen: String)]
    /// `READY=1`, the watchdog and `STOPPING=1` for systemd: the supervisor is the main process.
    private let notifications: ServiceNotifications

    private struct Worker {
        let slot: Int
        let pid: pid_t
        let started: Double
    }

    /// Binds every listener (an inherited one is already bound), then takes the `--user`/`--group`
    /// identity, which the workers inherit. On a failure, says why in one line and exits with status 1.
    init(command: Evserved, listeners: [ResolvedListener], logger: Logger) throws {
        count = command.listeners.workers
        self.logger = logger
        drainAllowance = command.timeouts.drainTimeout + 5
        notifications = ServiceNotifications(worker: false)
        baseArguments = Self.argumentsForWorkers(Array(CommandLine.arguments.dropFirst()))
        var sockets: [(CInt, String)] = []
        do {
            for listener in listeners {
                let spec = listener.spec
                let bound = try listener.socket.map { ($0, spec.address) } ?? ServerSocket.bindForHandOver(
                    command.configuration(for: spec),
                    datagram: spec.transport == .datagram
                )
                let high = fcntl(bound.0, F_DUPFD_CLOEXEC, 64)
                close(bound.0)
                sockets.append((high, ListenerSpec.url(for: bound.1, transport: spec.transport) + listener.query))
            }
            try command.privileges.dropAfterBinding(socketFiles: [])  // --workers binds no Unix socket file
        } catch {
            Evserved.printError("evserved: error: \(Daemon.describe(error))")
            throw ExitCode.failure
        }
        self.sockets = sockets
    }

    /// The sockets a supervisor handed down to this worker, in `--listen` order (none outside a worker).
    static func handedDownSockets() -> [CInt] {
        guard let list = getenv(socketsVariable) else { return [] }
        return String(cString: list).split(separator: ",").compactMap { CInt($0) }
    }

    /// Starts the workers, prints the listening lines once each serves, supervises until a stop signal, and
    /// returns the exit status: 0 when every worker drained and exited cleanly.
    func run(pidFile: PidFile?) -> Int32 {
        var workers: [pid_t: Worker] = [:]
        for slot in 0..<count {
            guard let worker = spawn(slot: slot) else {
                signalAll(workers, signal: SIGKILL)
                return 1
            }
            workers[worker.pid] = worker
        }
        do {
            try pidFile?.write()  // before the listening lines: whoever waits for them finds it
        } catch {
            Evserved.printError("evserved: error: \(error)")
            signalAll(workers, signal: SIGKILL)
            return 1
        }
        for (_, listen) in sockets {
            print("listening \(listen.prefix { $0 != "?" })")
        }
        fflush(nil)
        logger.notice("workers started", metadata: ["workers": "\(count)", "pids": "\(workers.keys.sorted())"])
        notifications.notifier?.ready(status: "serving \(sockets.count) listeners with \(count) workers")
        return supervise(&workers)
    }

    /// Restarts what dies and replaces the workers on SIGHUP until a stop signal; then waits for every
    /// worker. - Returns: the exit status.
    private func supervise(_ workers: inout [pid_t: Worker]) -> Int32 {
        var stopping = false
        var forced = false
        var failed = false
        /// Draining workers (replaced ones, or every one once stopping), with when they are killed if still there.
        var deadlines: [pid_t: Double] = [:]
        /// Slots waiting to be started again, with when, and how many quick deaths in a row.
        var restarts: [Int: (at: Double, failures: Int)] = [:]
        while !(stopping && workers.isEmpty && deadlines.isEmpty) {
            let signal = Self.waitForSignal(timeout: min(0.25, notifications.notifier?.watchdogInterval ?? 0.25))
            notifications.feedWatchdog()
            if signal == SIGUSR1 { signalAll(workers, signal: SIGUSR1) }  // each worker logs its figures
            if signal == SIGHUP, !stopping { replaceAll(&workers, deadlines: &deadlines) }
            if let signal, Signals.stops.contains(signal) {
                forced = stopping
                stop(workers, draining: deadlines.keys, again: stopping)
                if !stopping { for pid in workers.keys { deadlines[pid] = MonotonicClock.now + drainAllowance } }
                stopping = true
            }
            if killOverdue(&deadlines, serving: workers) { failed = true }
            for (pid, status) in Self.reap() {
                let worker = workers.removeValue(forKey: pid)
                if deadlines.removeValue(forKey: pid) != nil, worker == nil {
                    let how = Self.describe(status)
                    logger.notice("replaced worker finished", metadata: ["pid": "\(pid)", "status": "\(how)"])
                    continue
                }
                guard let worker else { continue }
                if stopping {
                    if !Self.exitedCleanly(status) { failed = true }
                    continue
                }
                restarts[worker.slot] = restart(after: worker, died: status, previous: restarts[worker.slot])
            }
            if stopping { restarts.removeAll() }
            startDue(&restarts, into: &workers)
        }
        logger.notice("stopped")
        return forced || failed ? 1 : 0
    }

    /// Kills (SIGKILL: a stopped or hung worker too) every draining worker past its deadline. - Returns:
    /// whether one of them was still a serving worker (a stop's drain, not a replaced one's).
    private func killOverdue(_ deadlines: inout [pid_t: Double], serving workers: [pid_t: Worker]) -> Bool {
        var killedServing = false
        for (pid, deadline) in deadlines where deadline < MonotonicClock.now {
            logger.warning(
                "a worker did not finish its drain in time; killing it",
                metadata: ["pid": "\(pid)", "allowance": "\(drainAllowance)"]
            )
            kill(pid, SIGKILL)
            deadlines[pid] = .infinity  // reaped soon; killed once
            if workers[pid] != nil { killedServing = true }
        }
        return killedServing
    }

    /// A stop signal: the first makes every serving worker drain (retiring ones drain already); a second
    /// makes them all exit at once.
    private func stop(_ workers: [pid_t: Worker], draining: Dictionary<pid_t, Double>.Keys, again: Bool) {
        if again {
            logger.warning("second signal: workers exit now without draining")
            for pid in draining where workers[pid] == nil { kill(pid, SIGTERM) }
        } else {
            notifications.notifier?.stopping(status: "stopping: \(workers.count) workers draining")
            logger.notice("stopping: every worker drains its connections", metadata: ["workers": "\(workers.count)"])
            // The workers close their copies as they drain; with ours closed too, new clients are refused.
            for socket in sockets { close(socket.descriptor) }
        }
        signalAll(workers, signal: SIGTERM)
    }

    /// SIGHUP: each worker in turn gives way to a fresh one, which serves before the old one drains, so the
    /// listeners never lack a worker. Stops at a worker that does not start (the old one goes on serving).
    private func replaceAll(_ workers: inout [pid_t: Worker], deadlines: inout [pid_t: Double]) {
        logger.notice("reloading: replacing the workers one by one", metadata: ["workers": "\(workers.count)"])
        for old in workers.values.sorted(by: { $0.slot < $1.slot }) {
            guard let fresh = spawn(slot: old.slot) else {
                logger.error("reload stopped: a new worker did not start; the others keep serving")
                return
            }
            workers[old.pid] = nil
            workers[fresh.pid] = fresh
            deadlines[old.pid] = MonotonicClock.now + drainAllowance
            kill(old.pid, SIGTERM)
        }
        logger.notice("reloaded: every worker replaced", metadata: ["pids": "\(workers.keys.sorted())"])
    }

    /// When to start again the slot of a worker that died: at once, unless it died within a second of its
    /// start, then after a back-off that doubles with each quick death, up to `longestBackOff`.
    private func restart(
        after worker: Worker, died status: CInt, previous: (at: Double, failures: Int)?
    ) -> (at: Double, failures: Int) {
        let quick = MonotonicClock.now - worker.started < 1
        let failures = quick ? (previous?.failures ?? 0) + 1 : 0
        let wait = quick ? min(Self.longestBackOff, 0.25 * Double(1 << min(failures, 5))) : 0
        logger.warning(
            "worker died; starting another",
            metadata: ["worker": "\(worker.slot)", "pid": "\(worker.pid)", "status": "\(Self.describe(status))",
                       "in-seconds": "\(wait)"]
        )
        return (MonotonicClock.now + wait, failures)
    }

    /// Starts the workers whose restart is due; one that fails to start is tried again later.
    private func startDue(_ restarts: inout [Int: (at: Double, failures: Int)], into workers: inout [pid_t: Worker]) {
        for (slot, restart) in restarts where restart.at <= MonotonicClock.now {
            if let worker = spawn(slot: slot) {
                workers[worker.pid] = worker
                restarts[slot] = nil
            } else {
                restarts[slot] = (MonotonicClock.now + Self.longestBackOff, restart.failures + 1)
            }
        }
    }

    /// Starts the worker of `slot` on the handed-down sockets and waits for its `listening` lines. `nil`
    /// when it failed to start (it said why on standard error, which it shares with the supervisor).
    private func spawn(slot: Int) -> Worker? {
        // The listeners first: whatever follows a `--` in the base arguments belongs to the --exec program.
        let arguments = [CommandLine.arguments[0]] + sockets.flatMap { ["--listen", $0.listen] } + baseArguments
        guard let output = ChildProcess.pipeClosedOnExec() else { return nil }
        defer { close(output.read) }
        let pid = ChildProcess.spawn(
            executable: executable, arguments: arguments, handing: sockets.map(\.descriptor),
            standardOutput: output.write,
            environment: [
                Self.workerVariable: "\(slot)", Self.socketsVariable: ChildProcess.handedDownList(count: sockets.count),
                Self.supervisorVariable: "\(getpid())",
            ]
        )
        close(output.write)
        guard let pid else {
            logger.error(
                "cannot start a worker",
                metadata: ["worker": "\(slot)", "error": "\(String(cString: strerror(errno)))"]
            )
            return nil
        }
        guard Self.readListeningLines(from: output.read, count: sockets.count) != nil else {
            var status: CInt = 0
            waitpid(pid, &status, 0)
            logger.error("worker \(slot) did not start", metadata: ["status": "\(Self.describe(status))"])
            return nil
        }
        return Worker(slot: slot, pid: pid, started: MonotonicClock.now)
    }

    private func signalAll(_ workers: [pid_t: Worker], signal: CInt) {
        for pid in workers.keys { kill(pid, signal) }
        if signal == SIGKILL { for pid in workers.keys { var status: CInt = 0; waitpid(pid, &status, 0) } }
    }

    /// This command line less what the supervisor decides or keeps for itself (`--workers`, `--listen`,
    /// `--pid-file`).
    static func argumentsForWorkers(_ arguments: [String]) -> [String] {
        ChildProcess.arguments(arguments, without: ["--workers", "--listen", "--pid-file"])
    }
}
