import CoreMetrics

/// `evserved_exec_children{listener}`: child processes running for a listener's `--exec` command. The
/// `exec` branch hooks it up in one line per listener, `let children = ExecChildrenGauge(listener: url)`,
/// then `children.started()` / `children.ended()` around each child. Without `--metrics-listen` it records
/// nothing (swift-metrics' no-op backend).
// TODO(exec): call started()/ended() where --exec spawns and reaps a child.
struct ExecChildrenGauge: Sendable {
    private let meter: Meter

    init(listener: String) {
        meter = Meter(label: "evserved_exec_children", dimensions: [("listener", listener)])
    }

    /// A child started.
    func started() { meter.increment() }
    /// A child ended (reaped).
    func ended() { meter.decrement() }
}
