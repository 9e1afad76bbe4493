import Glibc
import Testing
@testable import Security

/// GCRA with an injected clock: burst, refill, Retry-After, the memory bound, and one budget
/// shared by concurrent callers (the loops).
@Suite struct RateLimiterTests {
    let second: Int64 = 1_000_000_000
    let client = IPAddress("198.51.100.1")!

    @Test func burstThenRefillAtTheSustainedRate() {
        // 10 per 10 s = one per second, burst 5.
        let limiter = RateLimiter(policy: RateLimitPolicy(limit: 10, windowSeconds: 10, burst: 5))
        let t0: Int64 = 1_000 * second
        for expected in (0..<5).reversed() {
            #expect(limiter.check(client, now: t0).remaining == expected)
        }
        #expect(limiter.check(client, now: t0) == .limited(retryAfterSeconds: 1))
        // Half a second later: still limited, and Retry-After rounds the half second up.
        #expect(limiter.check(client, now: t0 + second / 2) == .limited(retryAfterSeconds: 1))
        // One emission interval later exactly one more is allowed.
        #expect(limiter.check(client, now: t0 + second).remaining == 0)
        #expect(limiter.check(client, now: t0 + second) == .limited(retryAfterSeconds: 1))
        // After a long pause the whole burst is back, not more.
        #expect(limiter.check(client, now: t0 + 100 * second).remaining == 4)
        // Another client has its own budget.
        #expect(limiter.check(IPAddress("198.51.100.2")!, now: t0).remaining == 4)
    }

    @Test func retryAfterIsAccurate() {
        // 5000 per 5 min (T = 60 ms), burst 1: after one request the next is 60 ms away → 1 s.
        let limiter = RateLimiter(policy: RateLimitPolicy(limit: 5000, windowSeconds: 300, burst: 1))
        #expect(limiter.check(client, now: 0).remaining == 0)
        #expect(limiter.check(client, now: 0) == .limited(retryAfterSeconds: 1))
        // 1 per minute, burst 2: the third request waits the full minute, less the time passed.
        let slow = RateLimiter(policy: RateLimitPolicy(limit: 1, windowSeconds: 60, burst: 2))
        _ = slow.check(client, now: 0)
        _ = slow.check(client, now: 0)
        #expect(slow.check(client, now: 0) == .limited(retryAfterSeconds: 60))
        #expect(slow.check(client, now: 15 * second) == .limited(retryAfterSeconds: 45))
        #expect(slow.check(client, now: 60 * second).remaining == 0)
    }

    @Test func policyParsing() {
        #expect(RateLimitPolicy(parsing: "5000/5m") == RateLimitPolicy(limit: 5000, windowSeconds: 300, burst: 5000))
        #expect(RateLimitPolicy(parsing: "100/s") == RateLimitPolicy(limit: 100, windowSeconds: 1, burst: 100))
        #expect(RateLimitPolicy(parsing: "10/2h")?.windowSeconds == 7200)
        for bad in ["", "5000", "x/5m", "0/5m", "10/5d", "10/-1m", "10/0m"] {
            #expect(RateLimitPolicy(parsing: bad) == nil, "\(bad)")
        }
        #expect(RateLimitPolicy.default.policyHeader == "\"default\";q=5000;w=300")
    }

    @Test func memoryStaysBoundedUnderAMillionClients() {
        let limiter = RateLimiter(policy: RateLimitPolicy(limit: 5000, windowSeconds: 300, burst: 5000), maxClients: 10_000)
        for n in 0..<1_000_000 {
            let address = IPAddress(high: 0x2001_0db8_0000_0000, low: UInt64(n))
            _ = limiter.check(address, now: Int64(n))  // all within the window: nothing expires
        }
        #expect(limiter.trackedClients <= 10_000)
        #expect(limiter.evictedClients >= 990_000)
    }

    @Test func expiredClientsAreSweptFirst() {
        // 100 per shard; 3,000 clients fill each shard about half.
        let limiter = RateLimiter(policy: RateLimitPolicy(limit: 1, windowSeconds: 1, burst: 1), maxClients: 6400)
        for n in 0..<3000 { _ = limiter.check(IPAddress(high: 1, low: UInt64(n)), now: 0) }
        #expect(limiter.evictedClients == 0)
        // Ten seconds on, every entry has refilled: new clients replace them without eviction.
        for n in 3000..<6000 { _ = limiter.check(IPAddress(high: 1, low: UInt64(n)), now: 10 * second) }
        #expect(limiter.trackedClients <= 6400)
        #expect(limiter.trackedClients >= 3000)
        #expect(limiter.evictedClients == 0)
    }

    /// Measures what the doc comment of `RateLimiter` states (bytes per tracked client).
    @Test func bytesPerClient() {
        let limiter = RateLimiter(policy: .default, maxClients: 200_000)
        for n in 0..<100_000 { _ = limiter.check(IPAddress(high: 2, low: UInt64(n)), now: 0) }
        let perClient = limiter.tableBytes / 100_000
        print("rate limiter: \(perClient) bytes per tracked client")
        #expect(limiter.trackedClients == 100_000)
        #expect(perClient >= 24 && perClient <= 70)
    }

    @Test func oneBudgetAcrossThreads() async {
        // Four "loops" hammering the same client: exactly the burst gets through.
        let limiter = RateLimiter(policy: RateLimitPolicy(limit: 1000, windowSeconds: 3600, burst: 1000))
        let client = self.client
        let allowed = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    var count = 0
                    for _ in 0..<1000 { if case .allowed = limiter.check(client, now: 0) { count += 1 } }
                    return count
                }
            }
            return await group.reduce(0, +)
        }
        #expect(allowed == 1000)
    }
}

@Suite struct ClientIdentityTests {
    let identity = ClientIdentity(trustedProxies: try! IPNetwork.list(ClientIdentity.defaultTrustedProxies).get())

    func resolve(_ peer: String, _ xff: [String]) -> String {
        identity.resolve(peer: IPAddress(peer)!, forwardedFor: xff.map { ArraySlice($0.utf8) }).description
    }

    @Test func untrustedPeerCannotSpoof() {
        #expect(resolve("203.0.113.5", ["1.2.3.4"]) == "203.0.113.5")
    }

    @Test func rightMostUntrustedAddressBehindTrustedProxies() {
        // Client wrote "6.6.6.6" itself; the ALB (10.0.1.9) appended the address it saw.
        #expect(resolve("10.0.1.9", ["6.6.6.6, 198.51.100.20"]) == "198.51.100.20")
        // Two proxies of ours: skip both.
        #expect(resolve("10.0.1.9", ["198.51.100.20, 10.0.2.2"]) == "198.51.100.20")
        #expect(resolve("10.0.1.9", ["198.51.100.20", "10.0.2.2"]) == "198.51.100.20")
        // Ports and IPv6 forms.
        #expect(resolve("127.0.0.1", ["198.51.100.20:4711"]) == "198.51.100.20")
        #expect(resolve("::1", ["[2001:db8::5]:443"]) == "2001:db8::5")
        // Only trusted addresses: the left-most of them.
        #expect(resolve("10.0.1.9", ["10.0.3.3"]) == "10.0.3.3")
        // Garbage: stop at what is known.
        #expect(resolve("10.0.1.9", ["not-an-ip"]) == "10.0.1.9")
    }

    @Test func networks() {
        #expect(IPNetwork("10.0.0.0/8")!.contains(IPAddress("10.255.1.2")!))
        #expect(!IPNetwork("10.0.0.0/8")!.contains(IPAddress("11.0.0.1")!))
        #expect(IPNetwork("fc00::/7")!.contains(IPAddress("fd12:3456::1")!))
        #expect(!IPNetwork("fc00::/7")!.contains(IPAddress("fe80::1")!))
        #expect(IPNetwork("0.0.0.0/0")!.contains(IPAddress("8.8.8.8")!))
        #expect(!IPNetwork("0.0.0.0/0")!.contains(IPAddress("2001:db8::1")!))
        #expect(IPNetwork("10.0.0.0/33") == nil)
        #expect(IPNetwork("10.0.0") == nil)
        #expect(IPAddress("127.0.0.1")!.isLoopback)
        #expect(IPAddress("::1")!.isLoopback)
    }
}
