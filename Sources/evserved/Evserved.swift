import ArgumentParser
import Dispatch
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

    @Option(help: "Service for listeners without their own: \(BuiltinService.names).")
    var service: BuiltinService = .echo

    @Option(help: "Execution mode for listeners without their own: \(ModeName.names).")
    var mode: ModeName = .event

    @Option(help: ArgumentHelp(
        "Event loops (threads) per TCP/UDP listener, each with its own SO_REUSEPORT socket; default: the number of cores in event and async mode, 1 in the others.",
        discussion: "Unix listeners always have one. Connection limits hold for all loops together; rate limits are split among them; sync mode serves one client per loop at a time; pool mode has --threads per loop.",
        valueName: "n"
    ))
    var loops: Int?

    @Option(help: ArgumentHelp(
        "Worker processes, each serving every listener on shared SO_REUSEPORT sockets, supervised (a dead one is restarted); 0: serve in this process.",
        valueName: "n"
    ))
    var workers: Int = 0

    @Option(help: "Worker threads in pool mode.")
    var threads: Int = 8

    @Option(help: "Accepted connections (or datagrams) that may wait for a worker in pool mode; datagrams beyond it are dropped and counted.")
    var queue: Int = 64

    @Option(help: ArgumentHelp("Close a connection idle for this many seconds.", valueName: "seconds"))
    var idleTimeout: Double?

    @Option(help: "Listen backlog (connections the kernel queues before they are accepted).")
    var backlog: Int = Int(SOMAXCONN)

    @Flag(help: "Set SO_REUSEPORT, so several processes can share a port.")
    var reusePort = false

    @Flag(inversion: .prefixedNo, help: "Set SO_REUSEADDR on TCP listeners.")
    var reuseAddress = true

    @Flag(help: "IPv6 listeners serve IPv6 only (default: an IPv6 wildcard such as [::] also serves IPv4).")
    var ipv6Only = false

    @Option(help: ArgumentHelp("Largest datagram served; larger ones are dropped whole and logged.", valueName: "bytes"))
    var maxDatagramSize: Int = 65_507

    @Option(help: ArgumentHelp("Most connections open at once per stream listener; at the limit it stops accepting until one closes.", valueName: "n"))
    var maxConnections: Int?

    @Option(help: ArgumentHelp("Most connections open at once from one IP address; more are closed at once.", valueName: "n"))
    var maxConnectionsPerClient: Int?

    @Option(help: ArgumentHelp("Most new connections accepted per second per listener; above it accepting pauses.", valueName: "per-second"))
    var maxConnectionRate: Double?

    @Option(help: ArgumentHelp("Most new connections accepted per second from one IP address; more are closed at once.", valueName: "per-second"))
    var maxConnectionRatePerClient: Double?

    @Option(name: .customLong("allow"), help: ArgumentHelp("Serve only clients in this CIDR range (10.0.0.0/8, ::1/128); repeatable.", valueName: "cidr"))
    var allow: [String] = []

    @Option(name: .customLong("deny"), help: ArgumentHelp("Refuse clients in this CIDR range, whatever --allow says; repeatable.", valueName: "cidr"))
    var deny: [String] = []

    @Option(help: ArgumentHelp("Longest line the line services (upper) accept; a longer one gets an error line and the connection closes.", valueName: "bytes"))
    var maxLine: Int = 64 * 1024

    @Option(help: ArgumentHelp("Close a connection that sends nothing for this many seconds.", valueName: "seconds"))
    var readTimeout: Double?

    @Option(help: ArgumentHelp("Close a connection that takes none of its replies for this many seconds.", valueName: "seconds"))
    var writeTimeout: Double?

    @Option(help: ArgumentHelp("Close any connection after this many seconds.", valueName: "seconds"))
    var maxLifetime: Double?

    @Option(help: ArgumentHelp("On SIGTERM/SIGINT, seconds open connections get to finish before they are closed; a second signal exits at once.", valueName: "seconds"))
    var drainTimeout: Double = 10

    @Option(help: "Lowest level logged to standard error: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .notice

    /// The parsed `--listen` values (filled by `validate`).
    private var listeners: [ListenerSpec] = []
    /// The parsed `--allow` and `--deny` ranges (filled by `validate`).
    private var allowRanges: [AddressRange] = []
    private var denyRanges: [AddressRange] = []

    private enum CodingKeys: String, CodingKey {
        case listen, service, mode, loops, workers, threads, queue, idleTimeout, backlog, reusePort, reuseAddress, ipv6Only
        case maxDatagramSize, maxConnections, maxConnectionsPerClient, maxConnectionRate, maxConnectionRatePerClient, allow, deny, maxLine
        case readTimeout, writeTimeout, maxLifetime, drainTimeout, logLevel
    }

    mutating func validate() throws {
        guard !listen.isEmpty else {
            throw ValidationError("give at least one --listen URL, for example --listen tcp://127.0.0.1:7000")
        }
        do {
            listeners = try listen.map { (text) throws(ListenerSpecError) in try ListenerSpec(parsing: text) }
        } catch {
            throw ValidationError(error.description)
        }
        guard workers >= 0 else { throw ValidationError("--workers must be 0 or more (got \(workers))") }
        if workers > 0, let unix = listeners.first(where: { $0.address.isUnix }) {
            throw ValidationError(
                "--workers cannot share the Unix socket \(unix.address) between processes (SO_REUSEPORT is for TCP and UDP): use --loops, or a separate daemon for it"
            )
        }
        if let loops, loops < 1 { throw ValidationError("--loops must be at least 1 (got \(loops))") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1 (got \(threads))") }
        guard queue >= 0 else { throw ValidationError("--queue must be 0 or more (got \(queue))") }
        guard backlog >= 0 else { throw ValidationError("--backlog must be 0 or more (got \(backlog))") }
        if let idleTimeout, !(idleTimeout > 0) {
            throw ValidationError("--idle-timeout must be a positive number of seconds (got \(idleTimeout))")
        }
        func ranges(_ texts: [String], flag: String) throws -> [AddressRange] {
            try texts.map { text in
                do { return try AddressRange(parsing: text) } catch let error as ServerError { throw ValidationError("--\(flag): \(error.message)") }
            }
        }
        allowRanges = try ranges(allow, flag: "allow")
        denyRanges = try ranges(deny, flag: "deny")
        for (flag, value) in [("--read-timeout", readTimeout), ("--write-timeout", writeTimeout), ("--max-lifetime", maxLifetime), ("--max-connection-rate", maxConnectionRate), ("--max-connection-rate-per-client", maxConnectionRatePerClient)] {
            if let value, !(value > 0) { throw ValidationError("\(flag) must be a positive number (got \(value))") }
        }
        for (flag, value) in [("--max-connections", maxConnections), ("--max-connections-per-client", maxConnectionsPerClient), ("--max-line", maxLine)] {
            if let value, value < 1 { throw ValidationError("\(flag) must be at least 1 (got \(value))") }
        }
        guard drainTimeout >= 0 else { throw ValidationError("--drain-timeout must be 0 or more seconds (got \(drainTimeout))") }
        guard (1...ServerConfiguration.largestDatagramSize).contains(maxDatagramSize) else {
            throw ValidationError("--max-datagram-size must be 1 to \(ServerConfiguration.largestDatagramSize) (got \(maxDatagramSize))")
        }
    }

    func run() throws {
        Signals.takeOwnership()
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "evserved")
        if let worker = getenv("EVSERVED_WORKER") { logger[metadataKey: "worker"] = "\(String(cString: worker))" }
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
        var groups: [(servers: [any SocketServer], transport: ListenerSpec.Transport)] = []
        var servers: [any SocketServer] { groups.flatMap(\.servers) }
        for spec in listeners {
            do {
                let group = try makeServers(spec, logger: logger)
                groups.append((group, spec.transport))
                for server in group { try server.start() }
            } catch {
                for server in servers { server.close() }
                printError("evserved: error: \(error)")
                throw ExitCode.failure
            }
        }
        for (group, transport) in groups {
            print("listening \(ListenerSpec.url(for: group[0].localAddress, transport: transport))")
        }
        fflush(nil)  // flush standard output now: scripts wait for these lines
        logger.notice("started", metadata: ["listeners": "\(servers.count)"])

        let signal = Signals.waitForStop()
        logger.notice(
            "shutting down: no new connections; open ones get up to the drain timeout (a second signal exits at once)",
            metadata: ["signal": "\(signal)", "drain-timeout": "\(drainTimeout)"]
        )
        let draining = DispatchGroup()
        for server in servers {
            DispatchQueue.global().async(group: draining) { [drainTimeout] in server.shutdownGracefully(timeout: drainTimeout) }
        }
        while draining.wait(timeout: .now()) == .timedOut {
            if let second = Signals.waitForStop(timeout: 0.05) {
                logger.warning("second signal: exiting now without draining", metadata: ["signal": "\(second)"])
                for spec in listeners { if let path = spec.address.unixPath { unlink(path) } }
                Glibc.exit(1)
            }
        }
        for (group, transport) in groups where group.count > 1 {
            logger.notice(
                "served per loop",
                metadata: [
                    "listener": "\(ListenerSpec.url(for: group[0].localAddress, transport: transport))",
                    "per-loop": "\(group.map { String(Self.served(by: $0)) }.joined(separator: " "))",
                ]
            )
        }
        logger.notice("stopped")
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

    private func makeServers(_ spec: ListenerSpec, logger: Logger) throws -> [any SocketServer] {
        let service = spec.service ?? service
        let executionMode = (spec.mode ?? mode).executionMode(threads: threads, queue: queue)
        // Loops spread event-driven work over the cores; blocking modes have their threads for that (and
        // sync promises one client at a time).
        let loops = self.loops ?? (executionMode.isBlocking ? 1 : Int(sysconf(CInt(_SC_NPROCESSORS_ONLN))))
        var configuration = ServerConfiguration(address: spec.address, mode: executionMode)
        configuration.backlog = backlog
        configuration.reuseAddress = reuseAddress
        configuration.reusePort = reusePort
        configuration.idleTimeout = idleTimeout
        configuration.ipv6Only = ipv6Only
        configuration.maximumDatagramSize = maxDatagramSize
        configuration.maximumConnections = maxConnections
        configuration.maximumConnectionsPerClient = maxConnectionsPerClient
        configuration.maximumConnectionRate = maxConnectionRate
        configuration.maximumConnectionRatePerClient = maxConnectionRatePerClient
        configuration.allow = allowRanges
        configuration.deny = denyRanges
        configuration.maximumLineLength = maxLine
        configuration.readTimeout = readTimeout
        configuration.writeTimeout = writeTimeout
        configuration.maximumLifetime = maxLifetime
        var listenerLogger = logger
        listenerLogger[metadataKey: "evserver.listener"] = "\(spec.address)"
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
        switch spec.transport {
        case .stream:
            return try ServerGroup.streamServers(
                loops: loops, configuration: configuration, handler: service.handler(for: executionMode), hooks: hooks,
                logger: listenerLogger
            )
        case .datagram:
            return try ServerGroup.datagramServers(
                loops: loops, configuration: configuration, handler: service.datagramHandler(for: executionMode),
                hooks: hooks, logger: listenerLogger
            )
        }
    }

    private func printError(_ message: String) {
        let line = Array((message + "\n").utf8)
        _ = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }
}
