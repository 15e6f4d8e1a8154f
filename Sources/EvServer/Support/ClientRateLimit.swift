/// New connections per second from each client IP address: a token bucket per address. Buckets that have
/// filled up again are forgotten, so memory follows the addresses seen in the last second or so.
///
/// Used on one thread (the loop's).
struct ClientRateLimit {
    let rate: Double
    private var buckets: [String: TokenBucket] = [:]
    private var lastSweep: Double

    init(rate: Double, now: Double = MonotonicClock.now) {
        self.rate = rate
        lastSweep = now
    }

    /// Takes a token from `host`'s bucket; `false` when that address is over its rate.
    mutating func admit(_ host: String, now: Double = MonotonicClock.now) -> Bool {
        if now - lastSweep >= max(1, 1 / rate) { sweep(now: now) }
        var bucket = buckets[host] ?? TokenBucket(rate: rate, now: now)
        let admitted = bucket.take(now: now)
        buckets[host] = bucket
        return admitted
    }

    /// Addresses with a bucket (for tests and statistics).
    var trackedAddresses: Int { buckets.count }

    private mutating func sweep(now: Double) {
        buckets = buckets.filter { !$0.value.isFull(now: now) }
        lastSweep = now
    }
}
