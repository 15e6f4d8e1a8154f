import CoreMetrics

/// One server's counters in swift-metrics, made once when the server is made (never looked up by label per
/// event), labelled `listener` with the server's URL (`tcp://127.0.0.1:7000`, `udp://[::1]:7001`,
/// `unix:///path`, `unixgram:///path`). Whatever backend the program bootstrapped records them; without
/// one, swift-metrics' no-op handlers make each record a call that does nothing.
///
/// The names (prefix `evserver_`): `connections_accepted_total`, `connections_open` (a meter: up at accept,
/// down at close), `connections_refused_total{reason}` (`denied`, `verify`, `per-client-limit`,
/// `per-client-rate`, `no-thread`, `proxy`: an untrusted source or a bad, late or cut PROXY protocol header),
/// `intake_pauses_total{reason}` (times accepting or reading paused:
/// `limit`, `rate`, `workers-busy`, `resources`, `reply-back-pressure`), `bytes_received_total` and
/// `bytes_sent_total` (added when a connection closes: a connection's bytes count once it has closed),
/// `datagrams_received_total`, `datagrams_dropped_total{reason}` (`oversized`, `rejected`, `pool-full`,
/// `no-thread`), `handler_errors_total`. The servers of a group share one listener label, so a backend
/// that keys metrics by name and labels (Prometheus) adds their figures up.
///
/// `Sendable`: every member is immutable; swift-metrics handlers are thread-safe.
final class ServerMetrics: Sendable {
    let accepted: Counter
    let open: Meter
    let refusedDenied: Counter
    let refusedVerify: Counter
    let refusedPerClientLimit: Counter
    let refusedPerClientRate: Counter
    let refusedNoThread: Counter
    let refusedProxy: Counter
    let pausedLimit: Counter
    let pausedRate: Counter
    let pausedWorkersBusy: Counter
    let pausedResources: Counter
    let pausedReplyBackPressure: Counter
    let bytesReceived: Counter
    let bytesSent: Counter
    let datagramsReceived: Counter
    let droppedOversized: Counter
    let droppedRejected: Counter
    let droppedPoolFull: Counter
    let droppedNoThread: Counter
    let handlerErrors: Counter
    /// Whether a backend was bootstrapped when the server was made (its counters then record somewhere):
    /// without one, the per-connection work that only feeds them (a summary per close) is skipped.
    let isRecording: Bool

    /// The metrics of a server of `kind`; those of the other kind (datagrams of a stream server,
    /// connections of a datagram server) record nowhere, so the backend shows only what applies.
    init(_ address: SocketAddress, kind: ServerSocket.Kind) {
        isRecording = !(MetricsSystem.factory is NOOPMetricsHandler)
        let label = [("listener", Self.listenerLabel(address, kind: kind))]
        func counter(_ name: String, reason: String? = nil, only: ServerSocket.Kind? = nil) -> Counter {
            let dimensions = label + (reason.map { [("reason", $0)] } ?? [])
            guard only == nil || only == kind else {
                return Counter(label: name, dimensions: dimensions, handler: NOOPMetricsHandler.instance)
            }
            return Counter(label: "evserver_" + name, dimensions: dimensions)
        }
        accepted = counter("connections_accepted_total", only: .stream)
        open = kind == .stream
            ? Meter(label: "evserver_connections_open", dimensions: label)
            : Meter(label: "", dimensions: [], handler: NOOPMetricsHandler.instance)
        refusedDenied = counter("connections_refused_total", reason: "denied", only: .stream)
        refusedVerify = counter("connections_refused_total", reason: "verify", only: .stream)
        refusedPerClientLimit = counter("connections_refused_total", reason: "per-client-limit", only: .stream)
        refusedPerClientRate = counter("connections_refused_total", reason: "per-client-rate", only: .stream)
        refusedNoThread = counter("connections_refused_total", reason: "no-thread", only: .stream)
        refusedProxy = counter("connections_refused_total", reason: "proxy", only: .stream)
        pausedLimit = counter("intake_pauses_total", reason: "limit", only: .stream)
        pausedRate = counter("intake_pauses_total", reason: "rate", only: .stream)
        pausedWorkersBusy = counter("intake_pauses_total", reason: "workers-busy")
        pausedResources = counter("intake_pauses_total", reason: "resources")
        pausedReplyBackPressure = counter("intake_pauses_total", reason: "reply-back-pressure", only: .datagram)
        bytesReceived = counter("bytes_received_total", only: .stream)
        bytesSent = counter("bytes_sent_total", only: .stream)
        datagramsReceived = counter("datagrams_received_total", only: .datagram)
        droppedOversized = counter("datagrams_dropped_total", reason: "oversized", only: .datagram)
        droppedRejected = counter("datagrams_dropped_total", reason: "rejected", only: .datagram)
        droppedPoolFull = counter("datagrams_dropped_total", reason: "pool-full", only: .datagram)
        droppedNoThread = counter("datagrams_dropped_total", reason: "no-thread", only: .datagram)
        handlerErrors = counter("handler_errors_total")
    }

    /// The `listener` label of a server bound to `address`.
    static func listenerLabel(_ address: SocketAddress, kind: ServerSocket.Kind) -> String {
        let scheme: String
        switch (address.unixPath != nil, kind) {
        case (true, .stream): scheme = "unix://"
        case (true, .datagram): scheme = "unixgram://"
        case (false, .stream): scheme = "tcp://"
        case (false, .datagram): scheme = "udp://"
        }
        return scheme + "\(address)"
    }

    /// Counts the pauses newly set in `added` (a reason already holding is not counted again).
    func countPauses(_ added: PauseReasons) {
        if added.contains(.connectionLimit) { pausedLimit.increment() }
        if added.contains(.connectionRate) { pausedRate.increment() }
        if added.contains(.workersBusy) { pausedWorkersBusy.increment() }
        if added.contains(.resourceShortage) { pausedResources.increment() }
        if added.contains(.replyBackPressure) { pausedReplyBackPressure.increment() }
    }

    /// A connection closed: its bytes, one fewer open.
    func record(_ summary: ConnectionSummary) {
        if summary.bytesReceived > 0 { bytesReceived.increment(by: summary.bytesReceived) }
        if summary.bytesSent > 0 { bytesSent.increment(by: summary.bytesSent) }
        open.decrement()
    }
}
