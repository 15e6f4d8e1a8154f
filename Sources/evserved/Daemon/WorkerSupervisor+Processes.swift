#if canImport(Glibc)
import Glibc
#endif

// The process work of the supervisor: reading a worker's listening lines, reaping and describing exit
// statuses (`ChildProcess` starts them).
extension WorkerSupervisor {
    /// The variables a supervisor sets for its workers: not for the programs a worker runs (`--exec`).
    static let internalVariables: Set<String> = [workerVariable, supervisorVariable, socketsVariable]

    /// The URLs of a worker's `count` listening lines, or `nil` when it exits (or takes 30 s) first.
    static func readListeningLines(from descriptor: CInt, count: Int) -> [String]? {
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

    /// Waits up to `timeout` seconds for a signal the daemon takes, or SIGCHLD; the signal, or `nil`.
    static func waitForSignal(timeout: Double) -> CInt? {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in Signals.stops + [SIGCHLD, SIGHUP, SIGUSR1, SIGUSR2, SIGALRM] { sigaddset(&set, signal) }
        var wait = timespec(tv_sec: Int(timeout), tv_nsec: Int((timeout - timeout.rounded(.down)) * 1e9))
        let signal = sigtimedwait(&set, nil, &wait)
        return signal > 0 ? signal : nil
    }

    /// Every child that has exited, with its status.
    static func reap() -> [(pid_t, CInt)] {
        var exited: [(pid_t, CInt)] = []
        while true {
            var status: CInt = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid <= 0 { return exited }
            exited.append((pid, status))
        }
    }

    static func exitedCleanly(_ status: CInt) -> Bool { status & 0x7f == 0 && (status >> 8) & 0xff == 0 }

    static func describe(_ status: CInt) -> String {
        status & 0x7f == 0 ? "exit \((status >> 8) & 0xff)" : "signal \(status & 0x7f)"
    }
}
