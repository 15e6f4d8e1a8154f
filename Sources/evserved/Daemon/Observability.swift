import CoreMetrics
import EvServer
import EvservedKit
import Logging
import Prometheus

/// The daemon's logging and metrics set-up: the log format (`--log-format`), the line per closed
/// connection (`--log-connections`) and the metrics backend (`--metrics-listen`).
enum Observability {
    /// The label of the connection lines' logger: its level is at most `info` whatever `--log-level` says.
    static let connectionsLabel = "evserved.connections"

    /// Bootstraps swift-log once: text (swift-log's `StreamLogHandler`) or JSON lines, to standard error.
    static func bootstrapLogging(level: Logger.Level, options: ObservabilityOptions) {
        let format = options.logFormat
        LoggingSystem.bootstrap({ label, metadataProvider in
            let lowest = label == connectionsLabel ? min(level, .info) : level
            switch format {
            case .text:
                var handler = StreamLogHandler.standardError(label: label, metadataProvider: metadataProvider)
                handler.logLevel = lowest
                return handler
            case .json:
                var handler = JSONLogHandler(label: label, metadataProvider: metadataProvider)
                handler.logLevel = lowest
                return handler
            }
        }, metadataProvider: nil)
    }

    /// With `--metrics-listen`, bootstraps swift-metrics with a Prometheus registry (the library's
    /// `evserver_` names are served as `evserved_`), before any server is made. - Returns: the registry.
    static func bootstrapMetrics(options: ObservabilityOptions) -> PrometheusCollectorRegistry? {
        guard options.metricsListen != nil else { return nil }
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.nameAndLabelSanitizer = { name, labels in
            (name.hasPrefix("evserver_") ? "evserved_" + name.dropFirst("evserver_".count) : name, labels)
        }
        MetricsSystem.bootstrap(factory)
        return registry
    }

    /// With `--log-connections`, the hook that logs one `info` line per closed connection.
    static func connectionLog(
        options: ObservabilityOptions, worker: String?
    ) -> (@Sendable (ConnectionSummary) -> Void)? {
        guard options.logConnections else { return nil }
        var logger = Logger(label: connectionsLabel)
        if let worker { logger[metadataKey: "worker"] = "\(worker)" }
        return { [logger] summary in
            logger.info(
                "connection closed",
                metadata: [
                    "listener": "\(ListenerSpec.url(for: summary.local, transport: .stream))",
                    "peer": "\(summary.peer)",
                    "connection.id": "\(summary.id)",
                    "duration": "\((summary.duration * 1e6).rounded() / 1e6)",
                    "bytes-in": "\(summary.bytesReceived)",
                    "bytes-out": "\(summary.bytesSent)",
                    "reason": "\(summary.reason)",
                ]
            )
        }
    }
}
