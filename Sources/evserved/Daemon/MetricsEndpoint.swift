import ArgumentParser
import CoreMetrics
import EvServer
import EvservedKit
import Logging
import Prometheus

/// `--metrics-listen`: the Prometheus text at `http://HOST:PORT/metrics`, served by an event-mode
/// `StreamServer` of the library itself (one loop; idle clients closed after 10 s). A reload hands its
/// socket to the new process with the listeners' (no `SO_REUSEPORT`: no other process can join the port).
/// Besides the library's counters, `evserved_exec_children{listener}`: each `--exec` listener's programs
/// running, read at each scrape.
struct MetricsEndpoint {
    let server: StreamServer
    /// `http://HOST:PORT/metrics`, with the real port.
    var url: String { "http://\(server.localAddress)/metrics" }

    /// Binds `address` and serves `registry` in the background; `update` runs before each scrape.
    init(
        address: SocketAddress, registry: PrometheusCollectorRegistry, update: @escaping @Sendable () -> Void
    ) throws(ServerError) {
        var configuration = ServerConfiguration(address: address, mode: .event)
        configuration.idleTimeout = 10
        configuration.boundSocket = Reload.metricsDescriptor  // after a reload: the predecessor's socket
        var logger = Logger(label: "evserved")
        logger[metadataKey: "evserver.listener"] = "metrics"
        server = try StreamServer(
            configuration: configuration,
            handler: .event {
                MetricsHTTPHandler(body: {
                    update()
                    return registry.emitToBuffer()
                })
            },
            logger: logger
        )
        try server.start()
    }

    /// Starts the endpoint when `--metrics-listen` was given, counting the `--exec` programs of `others`;
    /// on failure closes `others` and exits with one line, as a listener's failure does.
    static func start(
        _ registry: PrometheusCollectorRegistry?, _ options: ObservabilityOptions, closing others: [ServingListener]
    ) throws -> MetricsEndpoint? {
        guard let address = options.metricsListen, let registry else { return nil }
        let children = others.compactMap { listener in
            listener.exec.map { (Gauge(label: "evserved_exec_children", dimensions: [("listener", listener.url)]), $0) }
        }
        do {
            return try MetricsEndpoint(address: address, registry: registry) {
                for (gauge, exec) in children { gauge.record(exec.liveChildren) }
            }
        } catch {
            for server in others.flatMap(\.servers) { server.close() }
            Evserved.printError("evserved: error: --metrics-listen: \(Daemon.describe(error))")
            throw ExitCode.failure
        }
    }
}
