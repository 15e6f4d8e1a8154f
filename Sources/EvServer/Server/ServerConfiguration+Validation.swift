extension ServerConfiguration {
    /// Throws when a setting is out of range or contradicts another.
    func validate() throws(ServerError) {
        try validateDurations()
        try validateCounts()
        try validateSizes()
    }

    private func invalid(_ message: String) -> ServerError { ServerError(.invalidConfiguration, message) }

    /// Timeouts, lifetimes and rates: finite, positive, at most a year.
    private func validateDurations() throws(ServerError) {
        let durations = [("idleTimeout", idleTimeout), ("readTimeout", readTimeout), ("writeTimeout", writeTimeout),
                         ("maximumLifetime", maximumLifetime), ("gracefulShutdownTimeout", gracefulShutdownTimeout),
                         ("proxyProtocol.headerTimeout", proxyProtocol?.headerTimeout)]
        for (name, value) in durations {
            if let value, !(value > 0 && value <= ServerConfiguration.longestDuration) {
                let year = Int(ServerConfiguration.longestDuration)
                throw invalid("\(name) \(value) must be a positive number of seconds, at most \(year) (a year)")
            }
        }
        let rates = [("maximumConnectionRate", maximumConnectionRate),
                     ("maximumConnectionRatePerClient", maximumConnectionRatePerClient)]
        for (name, value) in rates {
            if let value, !(value > 0 && value.isFinite) { throw invalid("\(name) \(value) must be a positive number") }
        }
        if let timeout, !(timeout >= 0 && timeout <= ServerConfiguration.longestDuration) {
            throw invalid("timeout \(timeout) must be 0 or more seconds, at most a year")
        }
        guard serviceActionsInterval > 0 && serviceActionsInterval <= ServerConfiguration.longestDuration else {
            throw invalid("serviceActionsInterval must be positive")
        }
    }

    /// The backlog, the pool, threads and connections.
    private func validateCounts() throws(ServerError) {
        guard backlog >= 0 else { throw invalid("backlog \(backlog) is negative: use 0 or more (default SOMAXCONN)") }
        if case .pool(let threads, let queueLimit) = mode {
            guard threads >= 1 else { throw invalid("a pool needs at least 1 thread (got \(threads))") }
            guard queueLimit >= 0 else {
                throw invalid("the pool queue limit \(queueLimit) is negative: use 0 or more")
            }
        }
        guard maximumThreads >= 1 else { throw invalid("maximumThreads must be at least 1 (got \(maximumThreads))") }
        let counts = [("maximumConnections", maximumConnections),
                      ("maximumConnectionsPerClient", maximumConnectionsPerClient)]
        for (name, value) in counts {
            if let value, value < 1 { throw invalid("\(name) must be at least 1 (got \(value))") }
        }
    }

    /// Lines, buffers and datagrams.
    private func validateSizes() throws(ServerError) {
        if let size = sendBufferSize, !(ServerConfiguration.sendBufferRange).contains(size) {
            let range = ServerConfiguration.sendBufferRange
            throw invalid(
                "sendBufferSize \(size) is out of range: use \(range.lowerBound) to \(range.upperBound) bytes"
            )
        }
        guard maximumLineLength >= 1 else {
            throw invalid("maximumLineLength must be at least 1 (got \(maximumLineLength))")
        }
        guard maximumInputBuffer >= maximumLineLength else {
            throw invalid(
                "maximumInputBuffer \(maximumInputBuffer) must be at least maximumLineLength \(maximumLineLength)"
            )
        }
        guard (1...ServerConfiguration.largestDatagramSize).contains(maximumDatagramSize) else {
            throw invalid(
                """
                maximumDatagramSize \(maximumDatagramSize) is out of range: use 1 to \
                \(ServerConfiguration.largestDatagramSize)
                """
            )
        }
        guard writeBufferLowWaterMark >= 0, writeBufferLowWaterMark <= writeBufferHighWaterMark else {
            throw invalid("the write buffer low water mark must be between 0 and the high water mark")
        }
    }
}
