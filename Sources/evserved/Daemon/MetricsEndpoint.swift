import ArgumentParser
import EvServer
import EvservedKit
import Logging
import Prometheus

/// `--metrics-listen`: the Prometheus text at `http://HOST:PORT/metrics`, served by an event-mode
/// `StreamServer` of the library itself (one loop; idle clients closed after 10 s).
struct MetricsEndpoint {
    let server: StreamServer
    /// `http://HOST:PORT/metrics`, with the real port.
    var url: String { "http://\(server.localAddress)/metrics" }

    /// Binds `address` and serves `registry` in the background.
    init(address: SocketAddress, registry: PrometheusCollectorRegistry) throws(ServerError) {
        var configuration = ServerConfiguration(address: address, mode: .event)
        configuration.idleTimeout = 10
        var logger = Logger(label: "evserved")
        logger[metadataKey: "evserver.listener"] = "metrics"
        server = try StreamServer(
            configuration: configuration,
            handler: .event { MetricsHTTPHandler(body: { registry.emitToBuffer() }) },
            logger: logger
        )
        try server.start()
    }

    /// Starts the endpoint when `--metrics-listen` was given; on failure closes `others` and exits with
    /// one line, as a listener's failure does.
    static func start(
        _ registry: PrometheusCollectorRegistry?, _ options: ObservabilityOptions, closing others: [ServingListener]
    ) throws -> MetricsEndpoint? {
        guard let address = options.metricsListen, let registry else { return nil }
        do {
            return try MetricsEndpoint(address: address, registry: registry)
        } catch {
            for server in others.flatMap(\.servers) { server.close() }
            Evserved.printError("evserved: error: --metrics-listen: \(Daemon.describe(error))")
            throw ExitCode.failure
        }
    }
}
