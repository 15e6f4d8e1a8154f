#if canImport(Glibc)
import Glibc
#endif
import EvServer
import Logging

/// SIGHUP without `--workers`: reload without downtime. A fresh process of the same executable file (a
/// binary replaced on disk since is the new one) with the same arguments inherits every listening socket
/// and serves it; once it says it serves, this process leaves it the sockets' files and drains: connections
/// queued in the kernel belong to the sockets, which stay open in the new process, so no client is refused
/// or reset, and connections open here finish here.
///
/// The successor finds its sockets in `EVSERVED_LISTEN_FDS` (as a worker does), its predecessor's pid in
/// `EVSERVED_RELOAD_OF` (so the pid file of a live predecessor does not stop it) and the pipe to say "ready"
/// on in `EVSERVED_READY_FD`. Runs on the main thread.
enum Reload {
    static let predecessorVariable = "EVSERVED_RELOAD_OF"
    static let readyVariable = "EVSERVED_READY_FD"
    /// How long a successor may take to serve before the reload is given up.
    private static let longestStart: CInt = 30_000

    /// The pid of the process this one takes over from, when it was started by a reload.
    static let predecessor: pid_t? = getenv(predecessorVariable).flatMap { pid_t(String(cString: $0)) }

    /// Starts the successor on `listeners`' sockets and waits until it serves. - Returns: its pid, or `nil`
    /// when it did not start (logged; this process goes on serving).
    static func start(_ listeners: [ServingListener], executable: String, logger: Logger) -> pid_t? {
        logger.notice("reloading: starting a new process on the listening sockets", metadata: ["executable": "\(executable)"])
        guard let ready = ChildProcess.pipeClosedOnExec() else {
            logger.error("reload failed: no pipe for the new process: \(String(cString: strerror(errno))); still serving")
            return nil
        }
        defer { close(ready.read) }
        let sockets = listeners.map { $0.servers[0].descriptor }
        let readyDescriptor = ChildProcess.firstHandedDown + CInt(sockets.count)
        fflush(nil)  // what this process printed must not be printed again by the new one
        let pid = ChildProcess.spawn(
            executable: executable, arguments: CommandLine.arguments,
            handing: sockets + [ready.write],
            environment: [
                WorkerSupervisor.socketsVariable: ChildProcess.handedDownList(count: sockets.count),
                readyVariable: "\(readyDescriptor)", predecessorVariable: "\(getpid())",
            ]
        )
        close(ready.write)
        guard let pid else {
            logger.error("reload failed: cannot start \(executable): \(String(cString: strerror(errno))); still serving")
            return nil
        }
        guard waitForReady(on: ready.read) else {
            kill(pid, SIGKILL)
            var status: CInt = 0
            waitpid(pid, &status, 0)
            logger.error(
                "reload failed: the new process did not serve; still serving",
                metadata: ["pid": "\(pid)", "status": "\(WorkerSupervisor.describe(status))"]
            )
            return nil
        }
        logger.notice("reloaded: the new process serves; this one drains its connections", metadata: ["pid": "\(pid)"])
        return pid
    }

    /// In a successor, once every listener serves: tells the predecessor, and forgets the variables so that
    /// programs this process starts do not see them.
    static func reportReady() {
        defer { for name in [predecessorVariable, readyVariable, WorkerSupervisor.socketsVariable] { unsetenv(name) } }
        guard let descriptor = getenv(readyVariable).flatMap({ CInt(String(cString: $0)) }) else { return }
        _ = "ready\n".withCString { write(descriptor, $0, 6) }
        close(descriptor)
    }

    /// Whether "ready" comes before the pipe closes (the successor exited) or `longestStart` passes.
    private static func waitForReady(on descriptor: CInt) -> Bool {
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, longestStart) > 0 else { return false }
        var bytes = [UInt8](repeating: 0, count: 6)
        return read(descriptor, &bytes, bytes.count) == 6 && bytes == Array("ready\n".utf8)
    }
}
