/// A token bucket: `rate` tokens a second, holding at most `capacity`. Used on one thread (the loop's).
struct TokenBucket {
    let rate: Double
    let capacity: Double
    private var tokens: Double
    private var updated: Double

    init(rate: Double, now: Double = MonotonicClock.now) {
        self.rate = rate
        capacity = max(1, rate)
        tokens = capacity
        updated = now
    }

    /// Takes a token if there is one.
    mutating func take(now: Double = MonotonicClock.now) -> Bool {
        tokens = min(capacity, tokens + (now - updated) * rate)
        updated = now
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }

    /// Whether the bucket would be full at `now` (nothing taken recently).
    func isFull(now: Double = MonotonicClock.now) -> Bool {
        tokens + (now - updated) * rate >= capacity
    }

    /// Gives back a token taken for nothing.
    mutating func refund() {
        tokens = min(capacity, tokens + 1)
    }

    /// Seconds until a token will be there.
    func secondsUntilNextToken(now: Double = MonotonicClock.now) -> Double {
        max(0.001, (1 - tokens) / rate - (now - updated))
    }
}
