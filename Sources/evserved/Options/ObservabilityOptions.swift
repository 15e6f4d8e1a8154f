import ArgumentParser
import EvServer
import EvservedKit

/// How the daemon reports: the log's format, a line per closed connection, and a Prometheus endpoint.
struct ObservabilityOptions: ParsableArguments {
    /// `--log-format`.
    enum LogFormat: String, CaseIterable {
        case text, json
    }

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Log lines as text (swift-log's format) or json (one object per line: time, level, message, metadata).",
            valueName: "format"
        ),
        transform: FlagValue.choice(flag: "--log-format")
    )
    var logFormat: LogFormat = .text

    @Flag(
        help: """
            Log one info line per closed connection: listener, peer, duration, bytes in and out, and why it \
            closed (closed-by-peer, idle-timeout, drain, ...); shown whatever --log-level says.
            """
    )
    var logConnections = false

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            """
            Serve Prometheus metrics at http://HOST:PORT/metrics (prints 'metrics URL' once bound). Not with \
            --workers.
            """,
            valueName: "tcp://host:port"
        ),
        transform: FlagValue.tcpAddress(flag: "--metrics-listen")
    )
    var metricsListen: SocketAddress?

    /// `--metrics-listen` with `--workers` is refused: each worker process counts its own connections, and
    /// one port cannot show their sum without a channel to the supervisor that does not exist yet.
    func validate(workers: Int) throws(FlagValueError) {
        if workers > 0, metricsListen != nil {
            throw FlagValueError(
                """
                --metrics-listen cannot be used with --workers: each worker process has its own figures; run \
                without --workers (use --loops for more cores) to serve metrics
                """
            )
        }
    }
}
