import EvServer
import EvservedKit
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `--exec`: one listener's program, run in a child process per connection, as ucspi-tcp's tcpserver does.
///
/// On the loop thread (event mode; the blocking modes hand the connection to the loop first) the handler
/// detaches the connection (`StreamConnection.detach()`: it keeps its place in `--max-connections` until
/// the child exits), puts its socket in blocking mode and starts the program with `posix_spawn`: the socket
/// as its standard input and output, a pipe as its standard error, no other descriptor, tcpserver's
/// environment. Starting takes a moment and never waits for the child; the `ChildMonitor` thread then logs
/// the child's lines, reaps it and frees the slot.
final class ExecService: Sendable {
    /// The program's path (resolved in `PATH` at start) and its `argv`.
    let path: String
    let arguments: [String]
    private let logger: Logger
    private let live = Atomic<Int>(0)

    init(path: String, arguments: [String], logger: Logger) {
        self.path = path
        self.arguments = arguments
        self.logger = logger
    }

    /// The service of a stream listener without its own `?service=` when a program is given; `nil` otherwise.
    convenience init?(for spec: ListenerSpec, options: ExecOptions, logger: Logger) {
        guard spec.transport == .stream, spec.service == nil, let arguments = options.programAndArguments,
            let path = try? options.resolvedProgram()
        else { return nil }
        self.init(path: path, arguments: arguments, logger: logger)
    }

    /// This listener's children still running (or not yet reaped): `exec-children` in the figures.
    var liveChildren: Int { live.load(ordering: .relaxed) }

    /// The stream handler for `mode`: the event handler itself, or, in the blocking modes, a blocking
    /// handler that hands each connection to the loop for it.
    func handler(for mode: ExecutionMode) -> StreamHandler {
        switch mode {
        case .sync, .thread, .pool: return .blocking { [self] in ExecHandOff(service: self) }
        // Async mode is refused when the command line is read; for an inherited listener (known only once
        // adopted) the server refuses the event handler in async mode when it is made.
        case .event, .async: return .event { [self] in ExecHandler(service: self) }
        }
    }

    /// Runs the program for `connection`; on failure logs why and closes the connection.
    func start(for connection: DetachedConnection) {
        var logger = self.logger
        logger[metadataKey: "connection.peer"] = "\(connection.clientAddress)"
        var pipeEnds: [CInt] = [-1, -1]
        do {
            guard pipe(&pipeEnds) == 0 else { throw ExecError("pipe", errno) }
            for end in pipeEnds { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
            let socket = connection.descriptor
            _ = fcntl(socket, F_SETFL, fcntl(socket, F_GETFL) & ~O_NONBLOCK)
            let pid = try ProcessSpawn.spawn(
                path, arguments: arguments,
                environment: ProcessSpawn.environment(
                    removing: WorkerSupervisor.internalVariables, adding: ExecEnvironment.variables(for: connection)
                ),
                descriptors: [(socket, STDIN_FILENO), (socket, STDOUT_FILENO), (pipeEnds[1], STDERR_FILENO)],
                closingFrom: 3
            )
            close(pipeEnds[1])
            close(socket)  // the child has it
            logger[metadataKey: "pid"] = "\(pid)"
            watch(pid: pid, standardError: pipeEnds[0], connection: connection, logger: logger)
        } catch {
            for end in pipeEnds where end >= 0 { close(end) }
            close(connection.descriptor)
            connection.release()
            logger.warning("cannot start the program: connection closed", metadata: ["error": "\(error)"])
        }
    }

    /// Hands the child to the monitor; a child that cannot be watched is killed and reaped here.
    private func watch(pid: pid_t, standardError: CInt, connection: DetachedConnection, logger: Logger) {
        live.add(1, ordering: .relaxed)
        logger.debug("program started")
        if let exitDescriptor = try? ProcessSpawn.exitDescriptor(of: pid) {
            let child = ChildMonitor.Child(
                pid: pid, descriptors: (exitDescriptor, standardError), logger: logger,
                connection: connection, exited: { [self] in live.subtract(1, ordering: .relaxed) }
            )
            if ChildMonitor.shared.watch(child) { return }
            close(exitDescriptor)
        }
        logger.error("cannot watch the program (pidfd_open needs Linux 5.3; or out of threads): killed it")
        kill(pid, SIGKILL)
        var status: CInt = 0
        waitpid(pid, &status, 0)
        close(standardError)
        live.subtract(1, ordering: .relaxed)
        connection.release()
    }
}

/// Event mode: detaches each connection and starts the program for it.
final class ExecHandler: StreamEventHandler {
    let service: ExecService
    init(service: ExecService) { self.service = service }

    func connectionOpened(_ connection: StreamConnection) {
        guard let detached = connection.detach() else { return }
        service.start(for: detached)
    }

    /// Never called: a detached connection is not read.
    func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) {}
}

/// The blocking modes: the handler hands the connection to the loop, where `ExecHandler` takes it.
final class ExecHandOff: StreamRequestHandler {
    let service: ExecService
    init(service: ExecService) { self.service = service }

    func handle(_ request: StreamRequest) throws { request.handOff(to: ExecHandler(service: service)) }
}

/// A system call that failed while starting a program.
struct ExecError: Error, CustomStringConvertible {
    let description: String
    init(_ operation: String, _ code: CInt) { description = "\(operation) failed: \(String(cString: strerror(code)))" }
}
