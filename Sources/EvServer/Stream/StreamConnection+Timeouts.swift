extension StreamConnection {
    /// Makes the timers of the timeouts `settings` has, stopped (`open()` starts them). None by
    /// default, and then no closure is made either (one per connection cost an allocation, unused).
    func makeTimers(_ settings: ConnectionSettings) {
        if let seconds = settings.idleTimeout {
            idleTimer = timeoutTimer(seconds, repeating: true, .idleTimeout) { "was idle for \($0) s" }
        }
        if let seconds = settings.readTimeout {
            readTimer = timeoutTimer(seconds, repeating: true, .readTimeout) { [unowned self] seconds in
                awaitsInput ? "sent nothing for \(seconds) s (read timeout)" : nil
            }
        }
        if let seconds = settings.writeTimeout {
            writeTimer = timeoutTimer(seconds, repeating: true, .writeTimeout) {
                "took none of its replies for \($0) s (write timeout)"
            }
        }
        if let seconds = settings.maximumLifetime {
            lifetimeTimer = timeoutTimer(seconds, repeating: false, .lifetime) {
                "reached the maximum lifetime of \($0) s"
            }
        }
    }

    /// A timer that closes the connection with `.timedOut` after `seconds` for `reason`; `why` says why for
    /// the message, or `nil` when the timeout does not apply right now.
    private func timeoutTimer(
        _ seconds: Double, repeating: Bool, _ reason: ConnectionSummary.Reason, why: @escaping (Double) -> String?
    ) -> TimerWatcher {
        TimerWatcher(loop: loop, after: seconds, repeat: repeating ? seconds : 0) { [unowned self] in
            guard let why = why(seconds) else { return }
            finish(error: ConnectionError(.timedOut, "\(clientAddress) \(why)"), reason: reason)
        }
    }
}
