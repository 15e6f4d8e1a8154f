/// The numeric addresses one connect attempt tries, in the order the lookup gave them (duplicates dropped),
/// and why each one failed.
///
/// The backplane connects to the first; when that fails (at once, or later in hiredis's connect callback)
/// it moves to the next, as hiredis itself would across a name's addresses; only when none is left has the
/// attempt failed (`reason` says why for each). A pure value: the session keeps one per attempt.
struct RedisAddressQueue: Equatable {
    /// Addresses not tried yet, in order.
    private(set) var remaining: [String]
    /// The address being tried (the last `next()`), `nil` before the first and once none is left.
    private(set) var current: String?
    /// `address: reason` for each address that failed, in order.
    private(set) var failures: [String] = []

    /// The addresses to try, in order; a repeated one is tried once (at its first place).
    init(_ addresses: [String]) {
        var seen = Set<String>()
        remaining = addresses.filter { seen.insert($0).inserted }
    }

    /// The next address to try, or `nil` when every one was tried.
    mutating func next() -> String? {
        current = remaining.isEmpty ? nil : remaining.removeFirst()
        return current
    }

    /// The current address failed for `reason`.
    mutating func failCurrent(_ reason: String) {
        guard let current else { return }
        failures.append("\(current): \(reason)")
    }

    /// Why the whole attempt failed: each address's reason, or that there was no address at all.
    var reason: String {
        failures.isEmpty ? "the host name has no address" : failures.joined(separator: "; ")
    }
}
