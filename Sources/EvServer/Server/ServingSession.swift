/// The loop side of the serving session in progress (`serveForever` or `handleRequest`), with its two
/// timers: `handleRequest`'s timeout and the `serviceActions` hook. Shared by the servers' cores.
///
/// Confined to the loop thread, like the core that owns it.
final class ServingSession {
    struct Current {
        let number: Int
        /// `handleRequest()`: the session ends after one client (connection or datagram).
        let oneRequest: Bool
        /// `handleRequest()` in event mode: the connection whose close ends the session.
        var connectionID: UInt64?
    }

    /// The session in progress, if any.
    var current: Current?
    var isServing: Bool { current != nil }
    var isOneRequest: Bool { current?.oneRequest == true }

    /// The newest session begun.
    private var lastBegun = 0
    /// The newest session whose stop arrived before its start: `shutdown()` on one thread can queue its
    /// stop ahead of the start `serveForever()` queues on another.
    private var stoppedBeforeStart = 0

    private var requestTimer: TimerWatcher!
    private var serviceActionsTimer: TimerWatcher!

    /// - Parameters:
    ///   - onTimeout: `handleRequest()` waited its timeout without a client.
    ///   - serviceActions: called every `interval` seconds while serving.
    init(
        loop: EventLoop, serviceActionsInterval interval: Double, onTimeout: @escaping () -> Void,
        serviceActions: @escaping () -> Void
    ) {
        requestTimer = TimerWatcher(loop: loop, after: 0, onFire: onTimeout)
        serviceActionsTimer = TimerWatcher(loop: loop, after: interval, repeat: interval, onFire: serviceActions)
    }

    /// Starts the session `number`, with `handleRequest()`'s `timeout` when `oneRequest`.
    /// - Returns: `false` when the session was already asked to stop: it is over before it began.
    func begin(number: Int, oneRequest: Bool, timeout: Double?, hasServiceActions: Bool) -> Bool {
        lastBegun = max(lastBegun, number)
        if number <= stoppedBeforeStart { return false }
        current = Current(number: number, oneRequest: oneRequest)
        if oneRequest, let timeout {
            requestTimer.set(after: timeout)
            requestTimer.start()
        }
        if hasServiceActions { serviceActionsTimer.start() }
        return true
    }

    /// Ends the session `number` (or whichever runs, when `nil`).
    /// - Returns: whether a session ended.
    func end(number: Int?) -> Bool {
        guard let session = current, number == nil || number == session.number else {
            if let number, number > lastBegun { stoppedBeforeStart = max(stoppedBeforeStart, number) }
            return false
        }
        current = nil
        stopTimers()
        return true
    }

    /// Stops both timers (the session's owner is closing).
    func stopTimers() {
        requestTimer.stop()
        serviceActionsTimer.stop()
    }
}
