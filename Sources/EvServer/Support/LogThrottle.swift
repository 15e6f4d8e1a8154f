/// Limits a warning that a flood can repeat (oversize datagrams, a full pool) to one line per interval,
/// carrying the count of the occurrences it stands for. Used on one thread (the loop's).
struct LogThrottle {
    private var lastLogged = -Double.infinity
    private var heldBack = 0

    /// Records one occurrence.
    /// - Returns: how many occurrences a line logged now stands for, or `nil` when the line is held back.
    mutating func occurrence(now: Double = MonotonicClock.now, interval: Double = 1) -> Int? {
        heldBack += 1
        guard now - lastLogged >= interval else { return nil }
        lastLogged = now
        defer { heldBack = 0 }
        return heldBack
    }
}
