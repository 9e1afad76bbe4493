import Net

/// New database connections per process, as a token bucket shared by every loop's pools.
///
/// A failover or restart makes every loop want new connections at once; each costs the server a
/// process and TLS handshake, and a flood of them is what slows a freshly promoted writer. The
/// bucket holds `capacity` (the pool's maximum: a full pool can be rebuilt at once) and refills
/// `capacity` per `refillPeriod`, so a storm cannot exceed that rate whatever the trigger. Pure:
/// the caller passes the time and holds the lock.
struct ConnectionBudget {
    let capacity: Double
    let perNanosecond: Double
    private var tokens: Double
    private var updated: MonotonicTime

    init(capacity: Int, refillPeriod: TimeSpan, now: MonotonicTime) {
        self.capacity = Double(max(1, capacity))
        perNanosecond = Double(max(1, capacity)) / Double(max(1, refillPeriod.nanoseconds))
        tokens = self.capacity
        updated = now
    }

    /// Takes one token: nil when granted, else how long until one is there.
    mutating func take(now: MonotonicTime) -> TimeSpan? {
        refill(now)
        if tokens >= 1 {
            tokens -= 1
            return nil
        }
        return TimeSpan(nanoseconds: Int64(((1 - tokens) / perNanosecond).rounded(.up)))
    }

    private mutating func refill(_ now: MonotonicTime) {
        let elapsed = Double(max(0, (now - updated).nanoseconds))
        tokens = min(capacity, tokens + elapsed * perNanosecond)
        updated = now
    }
}
