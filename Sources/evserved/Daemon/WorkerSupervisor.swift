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
/// slot, forever), and on SIGTERM/SIGINT passes the signal on so that every worker drains; a second signal
/// makes them exit at once.
///
/// Runs on the main thread of a process that has blocked SIGINT, SIGTERM and SIGCHLD and starts no thread.
struct WorkerSupervisor {
    /// The worker's number, in its environment.
    static let workerVariable = "EVSERVED_WORKER"
    /// The supervisor's pid, in a worker's environment: the worker ends (drains) when that process dies.
    static let supervisorVariable = "EVSERVED_SUPERVISOR"
    /// The descriptors of the handed-down sockets, in `--listen` order, in a worker's environment.
    static let socketsVariable = "EVSERVED_LISTEN_FDS"
    /// A worker gets its sockets from this descriptor number on.
    private static let firstHandedDown: CInt = 3
    /// The longest wait before a worker that keeps dying is started again.
    private static let longestBackOff = 4.0

    private let count: Int
    private let logger: Logger
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

    /// Restarts what dies until a stop signal; then waits for every worker. - Returns: the exit status.
    private func supervise(_ workers: inout [pid_t: Worker]) -> Int32 {
        var stopping = false
        var forced = false
        var failed = false
        /// Slots waiting to be started again, with when, and how many quick deaths in a row.
        var restarts: [Int: (at: Double, failures: Int)] = [:]
        while !(stopping && workers.isEmpty) {
            let signal = Self.waitForSignal(timeout: min(0.25, notifications.notifier?.watchdogInterval ?? 0.25))
            notifications.feedWatchdog()
            if signal == SIGUSR1 { signalAll(workers, signal: SIGUSR1) }  // each worker logs its figures
            if let signal, Signals.stops.contains(signal) {
                forced = stopping
                if stopping {
                    logger.warning("second signal: workers exit now without draining")
                } else {
                    stopping = true
                    notifications.notifier?.stopping(status: "stopping: \(workers.count) workers draining")
                    logger.notice(
                        "stopping: every worker drains its connections",
                        metadata: ["workers": "\(workers.count)"]
                    )
                    // The workers close their copies as they drain; with ours closed too, new clients are refused.
                    for socket in sockets { close(socket.descriptor) }
                }
                signalAll(workers, signal: SIGTERM)
            }
            for (pid, status) in Self.reap() {
                guard let worker = workers.removeValue(forKey: pid) else { continue }
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
        var arguments = [CommandLine.arguments[0]] + baseArguments
        for (_, listen) in sockets { arguments += ["--listen", listen] }
        var pipeEnds: [CInt] = [0, 0]
        guard pipe(&pipeEnds) == 0 else { return nil }
        // Only the worker's standard output (the dup2 below) may outlive the exec: no other worker inherits it.
        for end in pipeEnds { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        defer { close(pipeEnds[0]) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], STDOUT_FILENO)
        for (index, socket) in sockets.enumerated() {
            posix_spawn_file_actions_adddup2(&actions, socket.descriptor, Self.firstHandedDown + CInt(index))
        }
        let handedDown = sockets.indices.map { String(Self.firstHandedDown + CInt($0)) }.joined(separator: ",")
        let pid = Self.spawn(arguments, actions: &actions, environment: [
            Self.workerVariable: "\(slot)", Self.socketsVariable: handedDown, Self.supervisorVariable: "\(getpid())",
        ])
        close(pipeEnds[1])
        guard let pid else {
            logger.error(
                "cannot start a worker",
                metadata: ["worker": "\(slot)", "error": "\(String(cString: strerror(errno)))"]
            )
            return nil
        }
        guard Self.readListeningLines(from: pipeEnds[0], count: sockets.count) != nil else {
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
        let own = ["--workers", "--listen", "--pid-file"]
        var kept: [String] = []
        var skipNext = false
        for argument in arguments {
            if skipNext { skipNext = false; continue }
            if own.contains(argument) { skipNext = true; continue }
            if own.contains(where: { argument.hasPrefix($0 + "=") }) { continue }
            kept.append(argument)
        }
        return kept
    }
}
