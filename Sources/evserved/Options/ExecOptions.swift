import ArgumentParser
import EvServer
import EvservedKit

#if canImport(Glibc)
import Glibc
#endif

/// tcpserver's way of serving: a program per connection (`-- PROGRAM ARGS...` or `--exec PROGRAM`), and a
/// banner sent on connect.
struct ExecOptions: ParsableArguments {
    @Option(
        name: .customLong("exec"),
        help: ArgumentHelp(
            """
            Program run for each connection of every stream listener without its own ?service= (its arguments \
            after --); the same as giving it first after --.
            """,
            discussion: """
                Started without a shell (a name without / is looked up in PATH at start), the connection as its \
                standard input and output, its standard error logged line by line, with tcpserver's environment \
                (PROTO, TCPREMOTEIP, TCPREMOTEPORT, TCPLOCALIP, TCPLOCALPORT; TCP6... for IPv6; UNIXREMOTEPID, \
                UNIXREMOTEEUID, UNIXREMOTEEGID for Unix sockets). A connection counts toward --max-connections \
                until its program exits. On SIGTERM the drain waits for programs up to --drain-timeout, then \
                sends them SIGTERM and, a second later, SIGKILL. Modes: event (the default), sync, thread, pool; \
                not async. Datagram listeners keep their built-in service.
                """,
            valueName: "program"
        )
    )
    var exec: String?

    @Argument(
        parsing: .postTerminator,
        help: ArgumentHelp(
            "After --: the program run for each connection (unless --exec names it) and its arguments.",
            valueName: "program-and-arguments"
        )
    )
    var command: [String] = []

    @Option(
        help: ArgumentHelp(
            """
            A line sent before anything else to each client of every stream listener (built-in services and \
            programs alike), at most \(Self.longestBanner) bytes: CRLF is added unless the text ends with a \
            line end of its own.
            """,
            valueName: "text"
        ),
        transform: { text throws(FlagValueError) in
            guard !text.isEmpty, text.utf8.count <= Self.longestBanner else {
                throw FlagValueError("--banner", text, "use 1 to \(Self.longestBanner) bytes")
            }
            return text
        }
    )
    var banner: String?

    /// A banner fits any connection's send buffer (4096 bytes at the least), so it is written whole at once.
    static let longestBanner = 1024

    /// The program and its arguments (`argv`, the name as given first), or `nil` without one.
    var programAndArguments: [String]? {
        if let exec { return [exec] + command }
        return command.isEmpty ? nil : command
    }

    /// The program's path: as given when it has a `/`, else the first match in `PATH`; refused unless it is
    /// an executable regular file. `nil` without a program.
    func resolvedProgram() throws(FlagValueError) -> String? {
        guard let name = programAndArguments?.first else { return nil }
        let flag = exec == nil ? "program" : "--exec"
        guard !name.isEmpty else { throw FlagValueError(flag, name, "empty: give a program") }
        if name.contains("/") {
            if let problem = Self.problem(with: name) { throw FlagValueError(flag, name, problem) }
            return name
        }
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":", omittingEmptySubsequences: false) {
            let candidate = (directory.isEmpty ? "." : String(directory)) + "/" + name
            if Self.problem(with: candidate) == nil { return candidate }
        }
        throw FlagValueError(flag, name, "no executable file of that name in PATH (\(path)): give its full path")
    }

    /// Why `path` cannot be run, or `nil` when it can.
    private static func problem(with path: String) -> String? {
        var status = stat()
        guard stat(path, &status) == 0 else {
            return "\(String(cString: strerror(errno))): give the path of an executable file"
        }
        guard status.st_mode & S_IFMT == S_IFREG else { return "not a regular file: give the program's file" }
        guard access(path, X_OK) == 0 else {
            return "not executable (\(String(cString: strerror(errno)))): chmod +x it, or name another program"
        }
        return nil
    }
}

extension ExecOptions {
    /// Problems between the program and the listeners: a program that cannot run, a program no listener
    /// would run, or an exec listener in async mode (a child process needs no task). Exit status 1.
    func validate(against listeners: ListenerOptions) throws {
        guard let program = try resolvedProgram() else { return }
        let specs = listeners.listen.compactMap(\.spec).filter { $0.transport == .stream && $0.service == nil }
        // An inherited socket (systemd://, fd://) is known only once adopted: it may be a stream listener.
        guard !specs.isEmpty || listeners.listen.contains(where: { $0.spec == nil }) else {
            throw FlagValueError(
                "the program \(program) would serve no listener: every stream listener has its own ?service= (or "
                    + "there is none); drop ?service= from one, or the program"
            )
        }
        if let async = specs.first(where: { ($0.mode ?? listeners.mode) == .async }) {
            throw FlagValueError(
                "\(async.address) would run \(program) in async mode, which has nothing to offer a child process: "
                    + "use --mode event (the default), sync, thread or pool"
            )
        }
    }
}
