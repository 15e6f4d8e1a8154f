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
/// The successor's command line is this one with each listener given as the socket it inherits
/// (`--listen fd://N?service=...`, in order; the kind and address are read from the socket, so a listener
/// bound here, handed down by systemd or inherited works alike). Its environment names its predecessor
/// (`EVSERVED_RELOAD_OF`: the pid file of a live predecessor does not stop it), the sockets whose Unix files
/// it takes over (`EVSERVED_OWNED_FDS`: those this process would have removed at exit, never systemd's) and
/// the pipe to say "ready" on (`EVSERVED_READY_FD`). Runs on the main thread.
enum Reload {
    static let predecessorVariable = "EVSERVED_RELOAD_OF"
    static let readyVariable = "EVSERVED_READY_FD"
    static let ownedVariable = "EVSERVED_OWNED_FDS"
    /// How long a successor may take to serve before the reload is given up.
    private static let longestStart: CInt = 30_000

    /// The pid of the process this one takes over from, when it was started by a reload.
    static let predecessor: pid_t? = getenv(predecessorVariable).flatMap { pid_t(String(cString: $0)) }
    /// The inherited sockets whose Unix socket files this process takes over from its predecessor.
    static let ownedDescriptors: Set<CInt> = Set(
        (getenv(ownedVariable).map { String(cString: $0) } ?? "").split(separator: ",").compactMap { CInt($0) }
    )

    /// Starts the successor on `listeners`' sockets (`queries`: each one's `?service=...&mode=...`) and waits
    /// until it serves. - Returns: its pid, or `nil` when it did not start (logged; this one goes on serving).
    static func start(
        _ listeners: [ServingListener], queries: [String], executable: String, logger: Logger
    ) -> pid_t? {
        logger.notice(
            "reloading: starting a new process on the listening sockets", metadata: ["executable": "\(executable)"]
        )
        guard let ready = ChildProcess.pipeClosedOnExec() else {
            let reason = String(cString: strerror(errno))
            logger.error("reload failed: no pipe for the new process (\(reason)); still serving")
            return nil
        }
        defer { close(ready.read) }
        let sockets = listeners.map { $0.servers[0].descriptor }
        let numbers = sockets.indices.map { ChildProcess.firstHandedDown + CInt($0) }
        var arguments = ChildProcess.arguments(CommandLine.arguments, without: ["--listen"])
        let listen = zip(numbers, queries).flatMap { ["--listen", "fd://\($0)\($1)"] }
        arguments.insert(contentsOf: listen, at: arguments.firstIndex(of: "--") ?? arguments.endIndex)
        let owned = zip(numbers, listeners).filter { $1.ownsSocketFile }.map { String($0.0) }
        fflush(nil)  // what this process printed must not be printed again by the new one
        let pid = ChildProcess.spawn(
            executable: executable, arguments: arguments, handing: sockets + [ready.write],
            environment: [
                ownedVariable: owned.joined(separator: ","), predecessorVariable: "\(getpid())",
                readyVariable: "\(ChildProcess.firstHandedDown + CInt(sockets.count))",
            ]
        )
        close(ready.write)
        guard let pid else {
            let reason = String(cString: strerror(errno))
            logger.error("reload failed: cannot start \(executable): \(reason); still serving")
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

    /// The pipe to say "ready" on, in a successor.
    private static let readyDescriptor: CInt? = getenv(readyVariable).flatMap { CInt(String(cString: $0)) }

    /// Call first thing: reads what a reload left in the environment (a successor's predecessor, the files
    /// it takes over, its ready pipe) and removes it, so that programs this process starts do not see it.
    static func takeEnvironment() {
        _ = (predecessor, ownedDescriptors, readyDescriptor)
        for name in [predecessorVariable, readyVariable, ownedVariable] { unsetenv(name) }
    }

    /// In a successor, once every listener serves: tells the predecessor.
    static func reportReady() {
        guard let readyDescriptor else { return }
        _ = "ready\n".withCString { write(readyDescriptor, $0, 6) }
        close(readyDescriptor)
    }

    /// Whether "ready" comes before the pipe closes (the successor exited) or `longestStart` passes.
    private static func waitForReady(on descriptor: CInt) -> Bool {
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, longestStart) > 0 else { return false }
        var bytes = [UInt8](repeating: 0, count: 6)
        return read(descriptor, &bytes, bytes.count) == 6 && bytes == Array("ready\n".utf8)
    }
}
