/// A rate: `limit` requests per `window`, with up to `burst` at once (GCRA's tolerance).
public struct RateLimitPolicy: Sendable, Equatable {
    public var limit: Int
    public var windowSeconds: Int
    public var burst: Int

    /// The design's AWS WAF rate rule: 5,000 requests per 5 minutes per IP. The burst defaults to
    /// the limit, so no client that rule would let through is refused here.
    public static let `default` = RateLimitPolicy(limit: 5000, windowSeconds: 300, burst: 5000)

    public init(limit: Int, windowSeconds: Int, burst: Int) {
        self.limit = limit
        self.windowSeconds = windowSeconds
        self.burst = burst
    }

    /// `5000/5m`, `100/1s`, `10/m`, `20000/1h`; nil when malformed. The burst is the limit until
    /// set separately.
    public init?(parsing text: String) {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard parts.count == 2, let limit = Int(parts[0]), limit > 0, limit <= 100_000_000 else { return nil }
        var unit = parts[1]
        var count = 1
        let digits = unit.prefix { $0.isASCII && $0.isNumber }
        if !digits.isEmpty {
            guard let n = Int(digits), n > 0 else { return nil }
            count = n
            unit = unit.dropFirst(digits.count)
        }
        let seconds: Int
        switch unit {
        case "s": seconds = 1
        case "m": seconds = 60
        case "h": seconds = 3600
        default: return nil
        }
        self.init(limit: limit, windowSeconds: count * seconds, burst: limit)
    }

    /// Nanoseconds between two requests at the sustained rate (GCRA's emission interval T).
    var emissionInterval: Int64 { Int64(windowSeconds) * 1_000_000_000 / Int64(limit) }

    /// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers): quota and window.
    public var policyHeader: String { "\"\(name)\";q=\(limit);w=\(windowSeconds)" }
    /// The policy's name in `RateLimit-Policy` and `RateLimit` (`default`, `writes`).
    public var name = "default"
}
