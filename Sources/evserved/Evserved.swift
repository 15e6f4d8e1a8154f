import ArgumentParser
import EvServer
import EvservedKit
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// `evserved`: serves the built-in inetd services on TCP and Unix stream listeners.
@main
struct Evserved: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evserved",
        abstract: "Serve echo, upper, daytime, discard and chargen over TCP, UDP and Unix sockets.",
        discussion: """
            Each --listen prints one line 'listening URL' on standard output once bound (with the real port \
            when 0 was asked). SIGINT or SIGTERM stops the daemon cleanly (exit status 0).

            Examples:
              evserved --listen tcp://127.0.0.1:7000 --service upper
              evserved --listen 'tcp://[::]:7?service=echo' --listen 'tcp://[::]:13?service=daytime' --mode thread
              evserved --listen unix:///tmp/echo.sock --mode pool --threads 8 --queue 128
              evserved --listen 'udp://[::]:13?service=daytime' --listen unixgram:///tmp/echo.dgram
            """,
        version: "0.1.0"
    )

    @Option(
        name: .customLong("listen"),
        help: ArgumentHelp(
            "Where to listen: tcp://HOST:PORT, udp://HOST:PORT (IPv6 as [ADDRESS]), unix:///path or unixgram:///path; repeatable.",
            discussion: "Append ?service=NAME and/or &mode=MODE to give one listener its own service or mode.",
            valueName: "url"
        )
    )
    var listen: [String] = []

    @Option(
        help: ArgumentHelp("Service for listeners without their own: \(BuiltinService.names).", valueName: "service"),
        transform: { text throws(FlagValueError) in try FlagValue.choice(text, flag: "--service") }
    )
    var service: BuiltinService = .echo

    @Option(
        help: ArgumentHelp("Execution mode for listeners without their own: \(ModeName.names).", valueName: "mode"),
        transform: { text throws(FlagValueError) in try FlagValue.choice(text, flag: "--mode") }
    )
    var mode: ModeName = .event

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Event loops (threads) per TCP/UDP listener, each with its own SO_REUSEPORT socket, 1 to \(Self.mostLoops); default: the number of cores in event and async mode, 1 in the others.",
            discussion: "Unix listeners always have one. Connection limits hold for all loops together; rate limits are split among them; sync mode serves one client per loop at a time; pool mode has --threads per loop.",
            valueName: "n"
        ),
        transform: { text throws(FlagValueError) in try FlagValue.integer(text, flag: "--loops", in: 1...Self.mostLoops) }
    )
    var loops: Int?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Worker processes, each serving every listener on shared SO_REUSEPORT sockets, supervised (a dead one is restarted); 0: serve in this process.",
            valueName: "n"
        ),
        transform: { text throws(FlagValueError) in try FlagValue.integer(text, flag: "--workers", in: 0...Self.mostWorkers) }
    )
    var workers: Int = 0

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Worker threads in pool mode.", valueName: "n"),
        transform: { text throws(FlagValueError) in try FlagValue.integer(text, flag: "--threads", in: 1...Self.mostThreads) }
    )
    var threads: Int = 8

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Accepted connections (or datagrams) that may wait for a worker in pool mode; datagrams beyond it are dropped and counted.",
            valueName: "n"
        ),
        transform: { text throws(FlagValueError) in try FlagValue.integer(text, flag: "--queue", in: 0...Self.longestQueue) }
    )
    var queue: Int = 64

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Close a connection idle (no byte either way) for this many seconds, or 'none'.",
            discussion: "Default: \(Int(Self.blockingIdleTimeout)) s in the blocking modes (sync, thread, pool), where each connection holds a thread or a loop; none in event and async mode.",
            valueName: "seconds"
        ),
        transform: { text throws(FlagValueError) in
            text == "none" ? .unlimited : .seconds(try FlagValue.duration(text, flag: "--idle-timeout"))
        }
    )
    var idleTimeout: IdleTimeout?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Listen backlog (connections the kernel queues before they are accepted).", valueName: "n"),
        transform: { text throws(FlagValueError) in try FlagValue.integer(text, flag: "--backlog", in: 0...Int(Int32.max)) }
    )
    var backlog: Int = Int(SOMAXCONN)

    @Flag(help: "Set SO_REUSEPORT, so several processes can share a port.")
    var reusePort = false

    @Flag(inversion: .prefixedNo, help: "Set SO_REUSEADDR on TCP listeners.")
    var reuseAddress = true

    @Flag(help: "IPv6 listeners serve IPv6 only (default: an IPv6 wildcard such as [::] also serves IPv4).")
    var ipv6Only = false

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Largest datagram served; larger ones are dropped whole and logged.", valueName: "bytes"),
        transform: { text throws(FlagValueError) in
            try FlagValue.integer(text, flag: "--max-datagram-size", in: 1...ServerConfiguration.largestDatagramSize)
        }
    )
    var maxDatagramSize: Int = 65_507

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Most connections open at once per stream listener; at the limit it stops accepting until one closes.", valueName: "n"),
        transform: { text throws(FlagValueError) in try FlagValue.integer(text, flag: "--max-connections", in: 1...Int.max) }
    )
    var maxConnections: Int?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Most connections open at once from one IP address; more are closed at once.", valueName: "n"),
        transform: { text throws(FlagValueError) in try FlagValue.integer(text, flag: "--max-connections-per-client", in: 1...Int.max) }
    )
    var maxConnectionsPerClient: Int?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Most new connections accepted per second per listener; above it accepting pauses.", valueName: "per-second"),
        transform: { text throws(FlagValueError) in try FlagValue.rate(text, flag: "--max-connection-rate") }
    )
    var maxConnectionRate: Double?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Most new connections accepted per second from one IP address; more are closed at once.", valueName: "per-second"),
        transform: { text throws(FlagValueError) in try FlagValue.rate(text, flag: "--max-connection-rate-per-client") }
    )
    var maxConnectionRatePerClient: Double?

    @Option(
        name: .customLong("allow"),
        help: ArgumentHelp("Serve only clients in this CIDR range (10.0.0.0/8, ::1/128); repeatable.", valueName: "cidr"),
        transform: { text throws(FlagValueError) in try Self.range(text, flag: "--allow") }
    )
    var allow: [AddressRange] = []

    @Option(
        name: .customLong("deny"),
        help: ArgumentHelp("Refuse clients in this CIDR range, whatever --allow says; repeatable.", valueName: "cidr"),
        transform: { text throws(FlagValueError) in try Self.range(text, flag: "--deny") }
    )
    var deny: [AddressRange] = []

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Longest line the line services (upper) accept; a longer one gets an error line and the connection closes.", valueName: "bytes"),
        transform: { text throws(FlagValueError) in try FlagValue.integer(text, flag: "--max-line", in: 1...Self.longestLine) }
    )
    var maxLine: Int = 64 * 1024

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Close a connection that sends nothing for this many seconds.", valueName: "seconds"),
        transform: { text throws(FlagValueError) in try FlagValue.duration(text, flag: "--read-timeout") }
    )
    var readTimeout: Double?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Close a connection that takes none of its replies for this many seconds.", valueName: "seconds"),
        transform: { text throws(FlagValueError) in try FlagValue.duration(text, flag: "--write-timeout") }
    )
    var writeTimeout: Double?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Close any connection after this many seconds.", valueName: "seconds"),
        transform: { text throws(FlagValueError) in try FlagValue.duration(text, flag: "--max-lifetime") }
    )
    var maxLifetime: Double?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "On SIGTERM/SIGINT, seconds open connections get to finish before they are closed; a second signal exits at once.",
            valueName: "seconds"
        ),
        transform: { text throws(FlagValueError) in try FlagValue.duration(text, flag: "--drain-timeout", allowZero: true) }
    )
    var drainTimeout: Double = 10

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Kernel send buffer per connection (SO_SNDBUF), \(FlagValue.sendBufferRange.lowerBound) to \(FlagValue.sendBufferRange.upperBound) bytes: bounds what is queued for a client that does not read; default: the system's.",
            valueName: "bytes"
        ),
        transform: { text throws(FlagValueError) in try FlagValue.integer(text, flag: "--send-buffer", in: FlagValue.sendBufferRange) }
    )
    var sendBuffer: Int?

    @Option(
        help: ArgumentHelp("Lowest level logged to standard error: trace, debug, info, notice, warning, error, critical.", valueName: "level"),
        transform: { text throws(FlagValueError) in try FlagValue.choice(text, flag: "--log-level") }
    )
    var logLevel: Logger.Level = .notice

    /// Bounds of the flags whose range is the daemon's choice rather than the kernel's.
    static let mostLoops = 1024
    static let mostWorkers = 1024
    static let mostThreads = 4096
    static let longestQueue = 1_000_000
    static let longestLine = 16 * 1024 * 1024
    /// `--idle-timeout` when not given, in the blocking modes: each idle connection there holds a thread
    /// (thread mode: of at most `maximumThreads`), a pool worker or the loop (sync), so a client that never
    /// speaks would hold it forever.
    static let blockingIdleTimeout: Double = 300

    /// `--idle-timeout`: seconds, or `none` (no limit, even in the blocking modes).
    enum IdleTimeout: Equatable {
        case seconds(Double)
        case unlimited
    }

    /// The parsed `--listen` values (filled by `validate`).
    private var listeners: [ListenerSpec] = []

    private enum CodingKeys: String, CodingKey {
        case listen, service, mode, loops, workers, threads, queue, idleTimeout, backlog, reusePort, reuseAddress, ipv6Only
        case maxDatagramSize, maxConnections, maxConnectionsPerClient, maxConnectionRate, maxConnectionRatePerClient, allow, deny, maxLine
        case readTimeout, writeTimeout, maxLifetime, drainTimeout, sendBuffer, logLevel
    }

    private static func range(_ text: String, flag: String) throws(FlagValueError) -> AddressRange {
        do { return try AddressRange(parsing: text) } catch {
            // The library's message starts with the value; the line names it once.
            let quoted = "'\(text)': "
            let problem = error.message.hasPrefix(quoted) ? String(error.message.dropFirst(quoted.count)) : error.message
            throw FlagValueError(flag, text, problem)
        }
    }

    /// Problems no single value shows (each value was checked as it was read). Every error here is a
    /// `FlagValueError`: exit status 1, like a bad value.
    mutating func validate() throws {
        guard !listen.isEmpty else {
            throw FlagValueError("give at least one --listen URL, for example --listen tcp://127.0.0.1:7000")
        }
        do {
            listeners = try listen.map { (text) throws(ListenerSpecError) in try ListenerSpec(parsing: text) }
        } catch {
            throw FlagValueError(error.description)
        }
        if workers > 0, let unix = listeners.first(where: { $0.address.isUnix }) {
            throw FlagValueError(
                "--workers cannot share the Unix socket \(unix.address) between processes (SO_REUSEPORT is for TCP and UDP): use --loops, or a separate daemon for it"
            )
        }
    }

    // MARK: Command line

    /// Parses the command line with one rule for bad input: a value the daemon refuses (`FlagValueError`,
    /// from a flag's transform or `validate`) exits with status 1 and one line naming the flag; a command
    /// line that cannot be read (an unknown flag, a flag without its value, a stray argument) exits with
    /// status 64 (EX_USAGE) and one line. `--help` and `--version` print as usual.
    static func main() {
        var command: any ParsableCommand  // Evserved, or the parser's own help command
        do {
            command = try parseAsRoot()
        } catch {
            if let refused = findFlagValueError(in: error) {
                printError("evserved: error: \(refused)")
                Glibc.exit(1)
            }
            if exitCode(for: error) == .success { Self.exit(withError: error) }  // --help, --version
            let message = Self.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            printError("evserved: error: \(message) (see evserved --help)")
            Glibc.exit(64)
        }
        do {
            try command.run()
        } catch {
            Self.exit(withError: error)
        }
        Glibc.exit(0)
    }

    /// The `FlagValueError` inside an error of the argument parser (which wraps the errors of transforms
    /// and `validate` in types of its own).
    private static func findFlagValueError(in value: Any, depth: Int = 0) -> FlagValueError? {
        if let found = value as? FlagValueError { return found }
        guard depth < 8 else { return nil }
        for child in Mirror(reflecting: value).children {
            if let found = findFlagValueError(in: child.value, depth: depth + 1) { return found }
        }
        return nil
    }

    func run() throws {
        Signals.takeOwnership()
        let level = logLevel
        LoggingSystem.bootstrap({ label, metadataProvider in
            var handler = StreamLogHandler.standardError(label: label, metadataProvider: metadataProvider)
            handler.logLevel = level
            return handler
        }, metadataProvider: nil)
        let worker = getenv("EVSERVED_WORKER").map { String(cString: $0) }
        var logger = Logger(label: "evserved")
        if let worker { logger[metadataKey: "worker"] = "\(worker)" }
        if workers > 0 {
            Signals.takeChildSignals()
            let supervisor = WorkerSupervisor(
                baseArguments: Self.argumentsForWorkers(Array(CommandLine.arguments.dropFirst())),
                listenTexts: listen, transports: listeners.map(\.transport), count: workers, logger: logger
            )
            let status = supervisor.run()
            if status != 0 { throw ExitCode(status) }
            return
        }

        // One group of servers per listener: one server per loop.
        var groups: [ServingListener] = []
        var servers: [any SocketServer] { groups.flatMap(\.servers) }
        for spec in listeners {
            do {
                let group = try makeServers(spec, worker: worker)
                groups.append(group)
                for server in group.servers { try server.start() }
            } catch {
                // Whatever was made closes (a Unix listener removes its socket file) before the daemon exits.
                for server in servers { server.close() }
                Self.printError("evserved: error: \(Self.describe(error))")
                throw ExitCode.failure
            }
        }
        for group in groups { print("listening \(group.url)") }
        fflush(nil)  // flush standard output now: scripts wait for these lines
        for group in groups {
            let configuration = group.servers[0].configuration
            group.logger.notice(
                "listening",
                metadata: [
                    "listener": "\(group.url)",
                    "evserver.mode": "\(configuration.mode)",
                    "loops": "\(group.servers.count)",
                    "idle-timeout": "\(configuration.idleTimeout.map { "\($0)" } ?? "none")",
                    "send-buffer": "\(configuration.sendBufferSize.map { "\($0)" } ?? "system")",
                ]
            )
        }
        logger.notice("started", metadata: ["listeners": "\(groups.count)", "servers": "\(servers.count)"])

        let signal = Signals.waitForStop()
        logger.notice(
            "shutting down: no new connections; open ones get up to the drain timeout (a second signal exits at once)",
            metadata: ["signal": "\(signal)", "drain-timeout": "\(drainTimeout)"]
        )
        let draining = Drain(servers, timeout: drainTimeout)
        while !draining.isFinished {
            if let second = Signals.waitForStop(timeout: 0.05) {
                logger.warning("second signal: exiting now without draining", metadata: ["signal": "\(second)"])
                for spec in listeners { if let path = spec.address.unixPath { unlink(path) } }
                Glibc.exit(1)
            }
        }
        for group in groups where group.servers.count > 1 {
            group.logger.notice(
                "served per loop",
                metadata: ["listener": "\(group.url)", "per-loop": "\(group.servers.map { String(Self.served(by: $0)) }.joined(separator: " "))"]
            )
        }
        logger.notice("stopped")
    }

    /// One line for a start-up failure; out of descriptors, it names the limit and what to raise.
    private static func describe(_ error: any Error) -> String {
        let message = "\(error)"
        guard let error = error as? ServerError, error.errno == EMFILE, !message.contains("ulimit") else { return message }
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        return "\(message); out of file descriptors (limit \(limit.rlim_cur)): raise `ulimit -n`"
    }

    /// This command line less what the supervisor decides for each worker (`--workers`, `--listen`,
    /// `--reuse-port`).
    static func argumentsForWorkers(_ arguments: [String]) -> [String] {
        var kept: [String] = []
        var skipNext = false
        for argument in arguments {
            if skipNext { skipNext = false; continue }
            if argument == "--workers" || argument == "--listen" { skipNext = true; continue }
            if argument.hasPrefix("--workers=") || argument.hasPrefix("--listen=") || argument == "--reuse-port" { continue }
            kept.append(argument)
        }
        return kept
    }

    /// Connections (stream) or datagrams (datagram) a server has handled.
    private static func served(by server: any SocketServer) -> Int {
        switch server {
        case let stream as StreamServer: return stream.connectionsAccepted
        case let datagram as DatagramServer: return datagram.statistics.handled
        default: return 0
        }
    }

    /// A listener's servers (one per loop), its URL and its logger.
    private struct ServingListener {
        let servers: [any SocketServer]
        let transport: ListenerSpec.Transport
        let logger: Logger
        var url: String { ListenerSpec.url(for: servers[0].localAddress, transport: transport) }
    }

    /// The `ServerConfiguration` of one listener, from the flags.
    private func configuration(for spec: ListenerSpec, mode executionMode: ExecutionMode) -> ServerConfiguration {
        var configuration = ServerConfiguration(address: spec.address, mode: executionMode)
        configuration.backlog = backlog
        configuration.reuseAddress = reuseAddress
        configuration.reusePort = reusePort
        switch idleTimeout {
        case .seconds(let seconds)?: configuration.idleTimeout = seconds
        case .unlimited?: configuration.idleTimeout = nil
        case nil:
            // A blocking mode gives each connection a thread, a pool worker or (sync) the loop: without a
            // limit, clients that never speak would hold them all, silently.
            configuration.idleTimeout = executionMode.isBlocking && spec.transport == .stream ? Self.blockingIdleTimeout : nil
        }
        configuration.ipv6Only = ipv6Only
        configuration.maximumDatagramSize = maxDatagramSize
        configuration.maximumConnections = maxConnections
        configuration.maximumConnectionsPerClient = maxConnectionsPerClient
        configuration.maximumConnectionRate = maxConnectionRate
        configuration.maximumConnectionRatePerClient = maxConnectionRatePerClient
        configuration.allow = allow
        configuration.deny = deny
        configuration.maximumLineLength = maxLine
        configuration.maximumInputBuffer = max(configuration.maximumInputBuffer, maxLine)
        configuration.readTimeout = readTimeout
        configuration.writeTimeout = writeTimeout
        configuration.maximumLifetime = maxLifetime
        configuration.sendBufferSize = sendBuffer
        return configuration
    }

    private func makeServers(_ spec: ListenerSpec, worker: String?) throws -> ServingListener {
        let service = spec.service ?? service
        let executionMode = (spec.mode ?? mode).executionMode(threads: threads, queue: queue)
        // Loops spread event-driven work over the cores; blocking modes have their threads for that (and
        // sync promises one client at a time).
        let loops = self.loops ?? (executionMode.isBlocking ? 1 : Int(sysconf(CInt(_SC_NPROCESSORS_ONLN))))
        let configuration = configuration(for: spec, mode: executionMode)
        // Every line about this listener names its bound address (the real port once bound, not the 0 asked).
        let name = ListenerName(spec.address)
        var listenerLogger = Logger(label: "evserved", metadataProvider: Logger.MetadataProvider { ["evserver.listener": "\(name.value)"] })
        if let worker { listenerLogger[metadataKey: "worker"] = "\(worker)" }
        listenerLogger[metadataKey: "evserver.service"] = "\(service.rawValue)"
        let hooks = ServerHooks(handleError: { [listenerLogger] error, client in
            // A client that goes away or idles out is routine; anything else deserves a warning.
            let routine = (error as? ConnectionError).map { [.peerClosed, .timedOut, .replyDropped].contains($0.code) } ?? false
            listenerLogger.log(
                level: routine ? .debug : .warning,
                "handler failed",
                metadata: ["connection.peer": "\(client)", "error": "\(error)"]
            )
        })
        let servers: [any SocketServer]
        switch spec.transport {
        case .stream:
            servers = try ServerGroup.streamServers(
                loops: loops, configuration: configuration, handler: service.handler(for: executionMode), hooks: hooks,
                logger: listenerLogger
            )
        case .datagram:
            servers = try ServerGroup.datagramServers(
                loops: loops, configuration: configuration, handler: service.datagramHandler(for: executionMode),
                hooks: hooks, logger: listenerLogger
            )
        }
        name.value = servers[0].localAddress
        return ServingListener(servers: servers, transport: spec.transport, logger: listenerLogger)
    }

    private static func printError(_ message: String) {
        let line = Array((message + "\n").utf8)
        _ = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }
}
