import ArgumentParser
import EvServer
import EvservedKit
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The serving process: makes every listener's servers, prints the `listening` lines, serves until SIGINT,
/// SIGTERM or SIGQUIT, then drains (a second signal exits at once); on SIGHUP a new process takes the
/// sockets over (`Reload`) and this one drains. A worker of `--workers` is one of these, on
/// the sockets its supervisor hands down (`EVSERVED_LISTEN_FDS`).
struct Daemon {
    let command: Evserved
    /// Every listener, its socket settled (to bind, inherited, or handed down).
    let listeners: [ResolvedListener]
    /// The worker's number under a supervisor, for the log lines.
    private let worker = getenv(WorkerSupervisor.workerVariable).map { String(cString: $0) }

    init(command: Evserved, listeners: [ResolvedListener]) {
        self.command = command
        self.listeners = listeners
    }

    /// Serves until a stop signal; `pidFile` is written once every listener serves.
    func run(pidFile: PidFile?) throws {
        if let supervisor = getenv(WorkerSupervisor.supervisorVariable).flatMap({ pid_t(String(cString: $0)) }) {
            // A worker drains and ends with its supervisor, however the supervisor ends (even SIGKILL).
            ParentDeath.signal(SIGTERM, whenParentDies: supervisor)
        }
        let executable = ChildProcess.currentExecutable()  // before any reload: the file's path, not its copy
        var logger = Logger(label: "evserved")
        if let worker { logger[metadataKey: "worker"] = "\(worker)" }
        let registry = Observability.bootstrapMetrics(options: command.observability)
        let listeners = try start()
        let metrics = try MetricsEndpoint.start(registry, command.observability, closing: listeners)
        let notifications = ServiceNotifications(worker: worker != nil)
        try announce(listeners, metrics: metrics, pidFile: pidFile, notifications: notifications)
        let servers = listeners.flatMap(\.servers)
        logger.notice("started", metadata: ["listeners": "\(listeners.count)", "servers": "\(servers.count)"])
        var successor: pid_t?
        let signal = Signals.waitForStop(tick: notifications.tick) { other in
            switch other {
            case SIGUSR1:
                for listener in listeners { listener.logFigures() }
            case SIGHUP where worker == nil:
                successor = Reload.start(
                    listeners, queries: self.listeners.map(\.query), metrics: metrics?.server.descriptor,
                    executable: executable, logger: logger
                )
            case SIGHUP:
                logger.notice("SIGHUP ignored by a worker: send it to the supervisor, which replaces its workers")
            default:
                logger.notice("\(Signals.name(other)) ignored: it does not stop or reload evserved (stop: SIGTERM)")
            }
            return successor != nil
        }
        if successor != nil {
            metrics?.server.close()  // the successor serves the metrics socket now
            for server in servers { server.handOverSocketFile() }
            notifications.handedOver()
        }
        drain(listeners, after: signal, keepingFiles: successor != nil, pidFile: pidFile, notifications: notifications,
              logger: logger)
        for listener in listeners { listener.logShares() }
        metrics?.server.close()
        logger.notice("stopped")
    }

    /// Once every listener serves: writes the pid file, prints the `listening` lines, tells a reload's
    /// predecessor and systemd, and logs each listener's notice.
    private func announce(
        _ listeners: [ServingListener], metrics: MetricsEndpoint?, pidFile: PidFile?,
        notifications: ServiceNotifications
    ) throws {
        do {
            try pidFile?.write()  // before the listening lines: whoever waits for them finds it
        } catch {
            for server in listeners.flatMap(\.servers) { server.close() }
            Evserved.printError("evserved: error: \(error)")
            throw ExitCode.failure
        }
        for listener in listeners { print("listening \(listener.url)") }
        if let metrics { print("metrics \(metrics.url)") }  // after the listening lines
        fflush(nil)  // flush standard output now: scripts wait for these lines
        Reload.reportReady()
        for listener in listeners { listener.logStarted() }
        notifications.ready(listeners)
    }

    /// Drains every server for up to the drain timeout; a second stop signal exits at once (status 1),
    /// removing the Unix socket files it owns (bound, or taken over in a reload) unless `keepingFiles` (a
    /// new process serves them). `--exec` programs
    /// still running at the deadline get SIGTERM, and a second later SIGKILL.
    private func drain(
        _ listeners: [ServingListener], after signal: String, keepingFiles: Bool, pidFile: PidFile?,
        notifications: ServiceNotifications, logger: Logger
    ) {
        let drainTimeout = command.timeouts.drainTimeout
        logger.notice(
            "shutting down: no new connections; open ones get up to the drain timeout (a second signal exits at once)",
            metadata: ["signal": "\(signal)", "drain-timeout": "\(drainTimeout)"]
        )
        notifications.stopping(listeners)
        let draining = Drain(listeners.flatMap(\.servers), timeout: drainTimeout)
        let children = listeners.contains { $0.exec != nil } ? ChildMonitor.shared : nil
        children?.terminate(after: drainTimeout)  // --exec programs: SIGTERM at the deadline, then SIGKILL
        let giveUp = MonotonicClock.now + drainTimeout + 5  // a handler that ignores the close cannot hold us
        while !draining.isFinished {
            notifications.draining(listeners)
            let second = Signals.waitForStop(timeout: 0.05)
            if second != nil || MonotonicClock.now > giveUp {
                let why = second == nil ? "the drain did not end in time" : "second signal"
                logger.warning("\(why): exiting now without draining", metadata: ["signal": "\(second ?? signal)"])
                children?.killAll()
                for listener in listeners where listener.ownsSocketFile && !keepingFiles {
                    if let path = listener.servers[0].configuration.address.unixPath { unlink(path) }
                }
                pidFile?.remove()
                Glibc.exit(1)
            }
        }
        if children?.waitForAll(timeout: 5) == false { logger.warning("exiting with programs not yet reaped") }
    }

    /// Makes every listener's servers, takes the `--user`/`--group` identity once all are bound, then
    /// starts them; on a failure closes what was made (a Unix listener removes its socket file) and exits
    /// with one line.
    private func start() throws -> [ServingListener] {
        let backplane = command.registry.makeBackplane(logger: Logger(label: "evserved"))
        var listeners: [ServingListener] = []
        do {
            for listener in self.listeners {
                listeners.append(
                    try ServingListener(
                        listener.spec, command: command, boundSocket: listener.socket, worker: worker,
                        backplane: backplane
                    )
                )
            }
            try command.privileges.dropAfterBinding(socketFiles: self.listeners.compactMap(\.ownSocketFile))
            for server in listeners.flatMap(\.servers) { try server.start() }
        } catch {
            for server in listeners.flatMap(\.servers) { server.close() }
            Evserved.printError("evserved: error: \(Self.describe(error))")
            throw ExitCode.failure
        }
        return listeners
    }

    /// One line for a start-up failure; out of descriptors, it names the limit and what to raise.
    static func describe(_ error: any Error) -> String {
        let message = "\(error)"
        guard let error = error as? ServerError, error.errno == EMFILE, !message.contains("ulimit") else {
            return message
        }
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        return "\(message); out of file descriptors (limit \(limit.rlim_cur)): raise `ulimit -n`"
    }
}
