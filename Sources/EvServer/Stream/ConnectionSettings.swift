/// What a `StreamConnection` takes from the server's configuration, read once per table: passing the whole
/// `ServerConfiguration` to each new connection copied it (a retain and release of each of its references,
/// ~400 instructions a connection).
struct ConnectionSettings {
    let highWaterMark: Int
    let lowWaterMark: Int
    let idleTimeout: Double?
    let readTimeout: Double?
    let writeTimeout: Double?
    let maximumLifetime: Double?
    /// Whether any of the timeouts is set (none by default: the connection then makes no timers).
    let hasTimeouts: Bool

    init(_ configuration: ServerConfiguration) {
        highWaterMark = configuration.writeBufferHighWaterMark
        lowWaterMark = configuration.writeBufferLowWaterMark
        idleTimeout = configuration.idleTimeout
        readTimeout = configuration.readTimeout
        writeTimeout = configuration.writeTimeout
        maximumLifetime = configuration.maximumLifetime
        hasTimeouts = idleTimeout != nil || readTimeout != nil || writeTimeout != nil || maximumLifetime != nil
    }
}
