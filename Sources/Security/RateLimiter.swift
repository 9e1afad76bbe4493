import Synchronization

/// Per-client rate limiting with GCRA (the generic cell rate algorithm, as in RFC 2697's
/// relatives and redis-cell): one number per client, the theoretical arrival time (TAT). A request
/// at `now` is allowed when `TAT - now <= tolerance`, and moves TAT to `max(TAT, now) + T`.
///
/// Shared by every loop of the process, so a client is limited the same whichever loop its
/// connections land on. Sharded by the client's hash: a request takes one of 64 locks, held for
/// a dictionary lookup; loops contend only when two requests hash to the same shard at the same
/// instant. Bounded: at most `maxClients` entries; when a shard is full, entries whose TAT has
/// passed (clients back to a full burst: keeping them changes nothing) are swept, and if none
/// has, a quarter of the shard (arbitrary entries) is evicted — such a client gets a fresh burst, the
/// price of a bounded table under a flood of distinct addresses.
public final class RateLimiter: Sendable {
    public enum Decision: Equatable, Sendable {
        public var remaining: Int? { if case .allowed(let remaining, _) = self { remaining } else { nil } }

        /// `remaining`: requests still allowed at once; `resetSeconds`: until the full burst is
        /// back (rounded up), the `t` of the `RateLimit` field.
        case allowed(remaining: Int, resetSeconds: Int)
        /// `retryAfterSeconds`: when the next request will be allowed (rounded up).
        case limited(retryAfterSeconds: Int)
    }

    static let shardCount = 64
    /// Memory per tracked client, measured by `RateLimiterTests.bytesPerClient`: the key (16
    /// bytes) and the TAT (8) in a dictionary slot, at a load factor between 3/8 and 3/4:
    /// 32–64 bytes, so the default 100,000 clients cost at most about 6.4 MB.
    public let maxClients: Int
    public let policy: RateLimitPolicy
    private let shards: [ShardBox]
    private let perShard: Int

    struct Shard {
        var entries: [IPAddress: Int64] = [:]
        var evicted = 0
    }

    /// Arrays cannot hold a `Mutex` (non-copyable) directly.
    final class ShardBox: Sendable {
        let mutex = Mutex(Shard())
        func withLock<R>(_ body: (inout Shard) -> R) -> R { mutex.withLock { body(&$0) } }
    }

    public init(policy: RateLimitPolicy, maxClients: Int = 100_000) {
        self.policy = policy
        self.maxClients = maxClients
        perShard = max(1, maxClients / Self.shardCount)
        shards = (0..<Self.shardCount).map { _ in ShardBox() }
    }

    /// `now`: monotonic nanoseconds (injected in tests).
    public func check(_ client: IPAddress, now: Int64) -> Decision {
        let t = policy.emissionInterval
        let tolerance = t * Int64(max(policy.burst, 1) - 1)
        let perShard = self.perShard
        // Fibonacci hashing: the product's top bits mix every input bit (sequential addresses spread).
        let index = Int(truncatingIfNeeded: ((client.low ^ client.high.byteSwapped) &* 0x9E37_79B9_7F4A_7C15) >> 58)
        return shards[index].withLock { shard -> Decision in
            // Found once: a known client's time is read and replaced through its index (a second
            // lookup hashed the address again, ~260 instructions a request, callgrind).
            let index = shard.entries.index(forKey: client)
            let tat = index.map { shard.entries.values[$0] } ?? now
            let start = max(tat, now)
            if start - now > tolerance {
                let wait = start - now - tolerance
                return .limited(retryAfterSeconds: Int((wait + 999_999_999) / 1_000_000_000))
            }
            let newTAT = start + t
            if let index {
                shard.entries.values[index] = newTAT
            } else {
                if shard.entries.count >= perShard { Self.makeRoom(&shard, now: now, keep: perShard) }
                shard.entries[client] = newTAT
            }
            let remaining = Int((tolerance - (newTAT - t - now)) / t)
            return .allowed(remaining: max(0, remaining), resetSeconds: Int((newTAT - now + 999_999_999) / 1_000_000_000))
        }
    }

    private static func makeRoom(_ shard: inout Shard, now: Int64, keep: Int) {
        shard.entries = shard.entries.filter { $0.value > now }
        if shard.entries.count >= keep {
            // Nothing has expired: drop a quarter of the shard (amortises the rebuild).
            let drop = max(1, keep / 4)
            var removed = 0
            for key in shard.entries.keys {
                shard.entries[key] = nil
                removed += 1
                if removed == drop { break }
            }
            shard.evicted += removed
        }
    }

    /// Tracked clients now (for tests and /metrics).
    public var trackedClients: Int {
        shards.reduce(0) { sum, shard in sum + shard.withLock { $0.entries.count } }
    }

    /// The tables' storage: every dictionary slot (capacity, not count) holds a key and a TAT,
    /// plus one bit of occupancy metadata (the standard library's native dictionary layout).
    public var tableBytes: Int {
        shards.reduce(0) { sum, shard in
            sum + shard.withLock { $0.entries.capacity * (MemoryLayout<IPAddress>.stride + MemoryLayout<Int64>.stride) + $0.entries.capacity / 8 }
        }
    }

    public var evictedClients: Int {
        shards.reduce(0) { sum, shard in sum + shard.withLock { $0.evicted } }
    }
}
