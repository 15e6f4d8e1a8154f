import ArgumentParser
import EvServer
import EvservedKit
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// `evserved`: serves the built-in inetd services on TCP, UDP and Unix stream and datagram listeners.
@main
struct Evserved: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evserved",
        abstract: "Serve echo, upper, daytime, discard and chargen over TCP, UDP and Unix sockets.",
        discussion: """
            Each --listen prints one line 'listening URL' on standard output once bound (with the real port \
            when 0 was asked). SIGINT, SIGTERM or SIGQUIT stops the daemon cleanly (exit status 0) after draining; \
            SIGHUP reloads without downtime (a new process of the same executable file takes the sockets over; \
            with --workers they are replaced one by one); SIGUSR1 logs each listener's figures. Under systemd \
            (NOTIFY_SOCKET set) it sends READY=1 once every listener serves, STATUS= lines, STOPPING=1 as it \
            drains and WATCHDOG=1 every half of WATCHDOG_USEC; see contrib/systemd for example units.

            Examples:
              evserved --listen tcp://127.0.0.1:7000 --service upper
              evserved --listen 'tcp://[::]:7?service=echo' --listen 'tcp://[::]:13?service=daytime' --mode thread
              evserved --listen unix:///tmp/echo.sock --mode pool --threads 8 --queue 128
              evserved --listen 'udp://[::]:13?service=daytime' --listen unixgram:///tmp/echo.dgram
            """,
        version: "0.1.0"
    )

    @OptionGroup var listeners: ListenerOptions
    @OptionGroup var sockets: SocketOptions
    @OptionGroup var limits: LimitOptions
    @OptionGroup var timeouts: TimeoutOptions
    @OptionGroup var observability: ObservabilityOptions
    @OptionGroup var exec: ExecOptions
    @OptionGroup var privileges: PrivilegeOptions
    @OptionGroup var registry: RegistryOptions
    @OptionGroup var proxy: ProxyOptions

    @Option(
        help: ArgumentHelp(
            "Lowest level logged to standard error: trace, debug, info, notice, warning, error, critical.",
            valueName: "level"
        ),
        transform: FlagValue.choice(flag: "--log-level")
    )
    var logLevel: Logger.Level = .notice

    @Option(
        help: ArgumentHelp(
            """
            Write the daemon's pid to this file once every listener serves; removed at exit. A live daemon's \
            file refuses the start.
            """,
            valueName: "path"
        ),
        transform: FlagValue.writablePath(flag: "--pid-file")
    )
    var pidFile: String?

    /// The `ServerConfiguration` of one listener, from the flags.
    func configuration(for spec: ListenerSpec) -> ServerConfiguration {
        var configuration = ServerConfiguration(address: spec.address, mode: listeners.serving(spec).mode)
        sockets.apply(to: &configuration)
        limits.apply(to: &configuration)
        timeouts.apply(to: &configuration, transport: spec.transport)
        proxy.apply(to: &configuration, spec: spec)
        return configuration
    }

    func run() throws {
        Signals.takeOwnership()
        Reload.takeEnvironment()
        let pidFile = self.pidFile.map(PidFile.init)
        do {
            try pidFile?.claim(replacing: Reload.predecessor)
        } catch {
            Self.printError("evserved: error: \(error)")
            throw ExitCode.failure
        }
        Observability.bootstrapLogging(level: logLevel, options: observability)
        let resolved = try resolvedListeners()  // before binding: inherited sockets adopted, --user checked
        if listeners.workers > 0 {
            Signals.takeChildSignals()
            let supervisor = try WorkerSupervisor(command: self, listeners: resolved, logger: Logger(label: "evserved"))
            let status = supervisor.run(pidFile: pidFile)
            pidFile?.remove()
            if status != 0 { throw ExitCode(status) }
            return
        }
        defer { pidFile?.remove() }
        try Daemon(command: self, listeners: resolved).run(pidFile: pidFile)
    }
}
