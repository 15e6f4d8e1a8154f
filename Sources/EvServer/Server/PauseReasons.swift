/// Why a serving server takes no new work (accepts no connection, reads no datagram): each reason is set
/// and cleared by the one place that owns it, and the intake's watcher runs only while a session serves
/// and no reason holds.
struct PauseReasons: OptionSet {
    let rawValue: UInt8

    /// Every worker is busy: `.thread` mode at `maximumThreads`, or the pool with its queue full. Cleared
    /// when a worker ends (`Workers`' `onRoom`).
    static let workersBusy = PauseReasons(rawValue: 1 << 0)
    /// The system is short of descriptors, memory or threads (`accept` or a worker thread failed): cleared
    /// by a timer a second later.
    static let resourceShortage = PauseReasons(rawValue: 1 << 1)
    /// At `maximumConnections` (counted across a group): cleared when a connection closes.
    static let connectionLimit = PauseReasons(rawValue: 1 << 2)
    /// Over `maximumConnectionRate`: cleared by a timer when the next token is due.
    static let connectionRate = PauseReasons(rawValue: 1 << 3)
    /// Event-mode datagram replies wait for the kernel above the high water mark: cleared below the low one.
    static let replyBackPressure = PauseReasons(rawValue: 1 << 4)
    /// For good: a graceful shutdown stopped taking work, or the server closed.
    static let stopped = PauseReasons(rawValue: 1 << 5)
}
