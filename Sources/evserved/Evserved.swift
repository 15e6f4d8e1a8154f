import ArgumentParser
import EvServer
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// `evserved`: serves the built-in inetd services on TCP and Unix stream listeners.
@main
struct Evserved: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evserved",
        abstract: "Serve echo, upper, daytime, discard and chargen on TCP and Unix stream sockets.",
        discussion: """
            Each --listen prints one line 'listening URL' on standard output once bound (with the real port \
            when 0 was asked). SIGINT or SIGTERM stops the daemon cleanly (exit status 0).

            Examples:
              evserved --listen tcp://127.0.0.1:7000 --service upper
              evserved --listen 'tcp://[::]:7?service=echo' --listen 'tcp://[::]:13?service=daytime' --mode thread
              evserved --listen unix:///tmp/echo.sock --mode pool --threads 8 --queue 128
            """,
        version: "0.1.0"
    )

    @Option(
        name: .customLong("listen"),
        help: ArgumentHelp(
            "Where to listen: tcp://HOST:PORT, tcp://[IPV6]:PORT or unix:///path; repeatable.",
            discussion: "Append ?service=NAME and/or &mode=MODE to give one listener its own service or mode.",
            valueName: "url"
        )
    )
    var listen: [String] = []

    @Option(help: "Service for listeners without their own: \(BuiltinService.names).")
    var service: BuiltinService = .echo

    @Option(help: "Execution mode for listeners without their own: \(ModeName.names).")
    var mode: ModeName = .event

    @Option(help: "Worker threads in pool mode.")
    var threads: Int = 8

    @Option(help: "Accepted connections that may wait for a worker in pool mode.")
    var queue: Int = 64

    @Option(help: ArgumentHelp("Close a connection idle for this many seconds.", valueName: "seconds"))
    var idleTimeout: Double?

    @Option(help: "Listen backlog (connections the kernel queues before they are accepted).")
    var backlog: Int = Int(SOMAXCONN)

    @Flag(help: "Set SO_REUSEPORT, so several processes can share a port.")
    var reusePort = false

    @Flag(inversion: .prefixedNo, help: "Set SO_REUSEADDR on TCP listeners.")
    var reuseAddress = true

    @Option(help: "Lowest level logged to standard error: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .notice

    /// The parsed `--listen` values (filled by `validate`).
    private var listeners: [ListenerSpec] = []

    private enum CodingKeys: String, CodingKey {
        case listen, service, mode, threads, queue, idleTimeout, backlog, reusePort, reuseAddress, logLevel
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
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1 (got \(threads))") }
        guard queue >= 0 else { throw ValidationError("--queue must be 0 or more (got \(queue))") }
        guard backlog >= 0 else { throw ValidationError("--backlog must be 0 or more (got \(backlog))") }
        if let idleTimeout, !(idleTimeout > 0) {
            throw ValidationError("--idle-timeout must be a positive number of seconds (got \(idleTimeout))")
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
        let logger = Logger(label: "evserved")

        var servers: [StreamServer] = []
        for spec in listeners {
            do {
                let server = try makeServer(spec, logger: logger)
                servers.append(server)
                try server.start()
            } catch {
                for server in servers { server.close() }
                printError("evserved: error: \(error)")
                throw ExitCode.failure
            }
        }
        for server in servers {
            print("listening \(ListenerSpec.url(for: server.localAddress))")
        }
        fflush(nil)  // flush standard output now: scripts wait for these lines
        logger.notice("started", metadata: ["listeners": "\(servers.count)"])

        let signal = Signals.waitForStop()
        logger.notice("shutting down", metadata: ["signal": "\(signal)"])
        for server in servers { server.shutdown() }
        for server in servers { server.close() }
        logger.notice("stopped")
    }

    private func makeServer(_ spec: ListenerSpec, logger: Logger) throws -> StreamServer {
        let service = spec.service ?? service
        let executionMode = (spec.mode ?? mode).executionMode(threads: threads, queue: queue)
        var configuration = ServerConfiguration(address: spec.address, mode: executionMode)
        configuration.backlog = backlog
        configuration.reuseAddress = reuseAddress
        configuration.reusePort = reusePort
        configuration.idleTimeout = idleTimeout
        var listenerLogger = logger
        listenerLogger[metadataKey: "evserver.listener"] = "\(spec.address)"
        listenerLogger[metadataKey: "evserver.service"] = "\(service.rawValue)"
        let hooks = ServerHooks(handleError: { [listenerLogger] error, client in
            // A client that goes away or idles out is routine; anything else deserves a warning.
            let routine = (error as? ConnectionError).map { [.peerClosed, .timedOut].contains($0.code) } ?? false
            listenerLogger.log(
                level: routine ? .debug : .warning,
                "handler failed",
                metadata: ["connection.peer": "\(client)", "error": "\(error)"]
            )
        })
        return try StreamServer(
            configuration: configuration,
            handler: service.handler(for: executionMode),
            hooks: hooks,
            logger: listenerLogger
        )
    }

    private func printError(_ message: String) {
        let line = Array((message + "\n").utf8)
        _ = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }
}
