#if canImport(Glibc)
import Glibc
#endif
import EvServer
import EvservedKit
import Logging

/// `--workers N`: the successor of socketserver's ForkingMixIn. The supervisor starts N worker processes
/// (fresh executions of this program, so each starts before any thread exists), each serving every
/// listener with its own loops on shared `SO_REUSEPORT` sockets. It restarts a worker that dies, and on
/// SIGTERM/SIGINT passes the signal on so that every worker drains; a second signal makes them exit at once.
///
/// The first worker binds the listeners as asked (port 0 picks a port); the others bind the ports it got.
/// Runs on the main thread of a process that has blocked SIGINT, SIGTERM and SIGCHLD.
struct WorkerSupervisor {
    /// The command-line arguments a worker gets, less `--listen` (the supervisor adds those).
    let baseArguments: [String]
    /// Each listener's `--listen` text, as given.
    let listenTexts: [String]
    let transports: [ListenerSpec.Transport]
    let count: Int
    let logger: Logger

    private struct Worker {
        let index: Int
        let pid: pid_t
        let started: Double
    }

    /// Starts the workers, prints the listening lines, supervises until a stop signal, and returns the exit
    /// status: 0 when every worker drained and exited cleanly.
    func run() -> Int32 {
        var workers: [pid_t: Worker] = [:]
        guard let first = spawn(index: 0, listen: listenTexts) else { return 1 }
        workers[first.worker.pid] = first.worker
        // The others bind the ports the first one got, keeping each listener's own service and mode.
        let resolved = zip(first.urls, listenTexts).map { url, text in
            url + (text.firstIndex(of: "?").map { String(text[$0...]) } ?? "")
        }
        for index in 1..<count {
            guard let next = spawn(index: index, listen: resolved) else {
                stopAll(workers, signal: SIGKILL)
                reapAll(&workers)
                return 1
            }
            workers[next.worker.pid] = next.worker
        }
        for url in first.urls { print("listening \(url)") }
        fflush(nil)
        logger.notice("workers started", metadata: ["workers": "\(count)", "pids": "\(workers.keys.sorted())"])

        var stopping = false
        var forced = false
        var failed = false
        while !(stopping && workers.isEmpty) {
            switch Self.waitForSignal(timeout: 0.5) {
            case SIGINT, SIGTERM:
                if stopping {
                    forced = true
                    logger.warning("second signal: workers exit now without draining")
                } else {
                    stopping = true
                    logger.notice("stopping: every worker drains its connections", metadata: ["workers": "\(workers.count)"])
                }
                stopAll(workers, signal: SIGTERM)
            default:
                break
            }
            for (pid, status) in Self.reap() {
                guard let worker = workers.removeValue(forKey: pid) else { continue }
                let exitedCleanly = Self.exitedCleanly(status)
                if stopping {
                    if !exitedCleanly { failed = true }
                    continue
                }
                logger.warning(
                    "worker died; starting another",
                    metadata: ["worker": "\(worker.index)", "pid": "\(pid)", "status": "\(Self.describe(status))"]
                )
                // A worker that dies at once would otherwise be restarted in a tight loop.
                if MonotonicSeconds.now - worker.started < 1 { sleep(1) }
                if let replacement = spawn(index: worker.index, listen: resolved) {
                    workers[replacement.worker.pid] = replacement.worker
                }
            }
        }
        logger.notice("stopped")
        return forced || failed ? 1 : 0
    }

    /// Starts one worker and waits for its `listening` lines. `nil` when it failed to start (it said why
    /// on standard error, which it shares with the supervisor).
    private func spawn(index: Int, listen: [String]) -> (worker: Worker, urls: [String])? {
        var arguments = [CommandLine.arguments[0]] + baseArguments
        for text in listen { arguments += ["--listen", text] }
        arguments += ["--reuse-port"]
        var pipeEnds: [CInt] = [0, 0]
        guard pipe(&pipeEnds) == 0 else { return nil }
        // Only the worker's standard output (the dup2 below) may outlive the exec: no other worker inherits it.
        for end in pipeEnds { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        defer { close(pipeEnds[0]) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], STDOUT_FILENO)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        // The worker's number, for its log lines.
        var environment: [UnsafeMutablePointer<CChar>?] = []
        var entry = environ
        while let variable = entry.pointee {
            if strncmp(variable, "EVSERVED_WORKER=", 16) != 0 { environment.append(strdup(variable)) }
            entry += 1
        }
        environment += [strdup("EVSERVED_WORKER=\(index)"), nil]
        defer { for pointer in environment { free(pointer) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, "/proc/self/exe", &actions, &attributes, argv, environment)
        close(pipeEnds[1])
        guard result == 0 else {
            logger.error("cannot start a worker", metadata: ["error": "\(String(cString: strerror(result)))"])
            return nil
        }
        let worker = Worker(index: index, pid: pid, started: MonotonicSeconds.now)
        guard let urls = Self.readListeningLines(from: pipeEnds[0], count: listen.count) else {
            var status: CInt = 0
            waitpid(pid, &status, 0)
            logger.error("worker \(index) did not start", metadata: ["status": "\(Self.describe(status))"])
            return nil
        }
        return (worker, urls)
    }

    private func stopAll(_ workers: [pid_t: Worker], signal: CInt) {
        for pid in workers.keys { kill(pid, signal) }
    }

    private func reapAll(_ workers: inout [pid_t: Worker]) {
        for pid in workers.keys { var status: CInt = 0; waitpid(pid, &status, 0) }
        workers.removeAll()
    }

    /// The URLs of a worker's `count` listening lines, or `nil` when it exits (or takes 30 s) first.
    private static func readListeningLines(from descriptor: CInt, count: Int) -> [String]? {
        var text: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        var urls: [String] = []
        while urls.count < count {
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 30_000) > 0 else { return nil }
            let received = read(descriptor, &chunk, chunk.count)
            guard received > 0 else { return nil }
            text += chunk[0..<received]
            while let newline = text.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: text[..<newline], as: UTF8.self)
                text.removeSubrange(...newline)
                if line.hasPrefix("listening ") { urls.append(String(line.dropFirst("listening ".count))) }
            }
        }
        return urls
    }

    /// Waits up to `timeout` seconds for SIGINT, SIGTERM or SIGCHLD; the signal, or 0.
    private static func waitForSignal(timeout: Double) -> CInt {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in [SIGINT, SIGTERM, SIGCHLD] { sigaddset(&set, signal) }
        var wait = timespec(tv_sec: Int(timeout), tv_nsec: Int((timeout - timeout.rounded(.down)) * 1e9))
        return max(0, sigtimedwait(&set, nil, &wait))
    }

    /// Every child that has exited, with its status.
    private static func reap() -> [(pid_t, CInt)] {
        var exited: [(pid_t, CInt)] = []
        while true {
            var status: CInt = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid <= 0 { return exited }
            exited.append((pid, status))
        }
    }

    private static func exitedCleanly(_ status: CInt) -> Bool { status & 0x7f == 0 && (status >> 8) & 0xff == 0 }

    private static func describe(_ status: CInt) -> String {
        status & 0x7f == 0 ? "exit \((status >> 8) & 0xff)" : "signal \(status & 0x7f)"
    }
}

/// Seconds on the monotonic clock.
enum MonotonicSeconds {
    static var now: Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
