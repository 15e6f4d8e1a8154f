import Logging

#if canImport(Glibc)
import Glibc
#endif

/// One `--exec` child as the monitor's thread keeps it: its standard error cut into lines for the log, and
/// its exit. Used only by that thread.
struct WatchedChild {
    let child: ChildMonitor.Child
    /// The read end of its standard-error pipe; -1 once at its end.
    private(set) var standardError: CInt
    private(set) var hasExited = false
    /// Bytes of a line not yet ended.
    private var partial: [UInt8] = []
    /// Lines longer than this are logged in pieces.
    private static let longestLine = 4096

    init(_ child: ChildMonitor.Child) {
        self.child = child
        standardError = child.descriptors.standardError
        _ = fcntl(standardError, F_SETFL, fcntl(standardError, F_GETFL) | O_NONBLOCK)
    }

    /// Reaped, and its standard error read to the end (a child of the child may keep it open longer).
    var isDone: Bool { hasExited && standardError < 0 }

    /// Reads what the child wrote to its standard error and logs each whole line (at its end, the rest).
    mutating func readStandardError() {
        var chunk = [UInt8](repeating: 0, count: Self.longestLine)
        while standardError >= 0 {
            let count = read(standardError, &chunk, chunk.count)
            if count < 0 && (errno == EAGAIN || errno == EINTR) { return }
            guard count > 0 else {
                if !partial.isEmpty { log(partial) }
                partial = []
                close(standardError)
                standardError = -1
                return
            }
            partial += chunk[..<count]
            while let newline = partial.firstIndex(of: UInt8(ascii: "\n")) {
                log(partial[..<newline])
                partial.removeSubrange(...newline)
            }
            if partial.count >= Self.longestLine {
                log(partial)
                partial = []
            }
        }
    }

    private func log(_ line: some Collection<UInt8>) {
        var text = String(decoding: line, as: UTF8.self)
        if text.hasSuffix("\r") { text.removeLast() }
        child.logger.notice("program: \(text)")
    }

    /// The child's exit status once it has exited (`waitpid` of its own pid, never of another's); `nil` while
    /// it runs.
    mutating func reap() -> CInt? {
        var status: CInt = 0
        var result: pid_t
        repeat { result = waitpid(child.pid, &status, WNOHANG) } while result < 0 && errno == EINTR
        guard result == child.pid else { return nil }
        hasExited = true
        close(child.descriptors.exit)
        return status
    }

    /// Logs the exit and frees the connection's slot.
    func finish(status: CInt) {
        child.logger.log(
            level: WorkerSupervisor.exitedCleanly(status) ? .info : .notice, "program exited",
            metadata: ["status": "\(WorkerSupervisor.describe(status))"]
        )
        child.exited()
        child.connection.release()
    }
}
