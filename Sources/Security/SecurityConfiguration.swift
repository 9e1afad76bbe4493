/// Everything the security layer can be told; built once from env vars by the executable.
public struct SecurityConfiguration: Sendable {
    public var trustedProxies: [IPNetwork] = IPNetwork.defaultTrusted
    public var waf = WAFConfiguration()
    /// Per client IP for every request except `/health*`; nil turns rate limiting off.
    public var rateLimit: RateLimitPolicy? = .default
    /// An extra, stricter limit for POST/PUT/PATCH/DELETE; nil for none.
    public var writeRateLimit: RateLimitPolicy?
    /// Clients tracked at most (per limiter); see `RateLimiter` for the bytes each costs.
    public var maxTrackedClients = 100_000
    /// `Strict-Transport-Security` max-age; TLS ends at the ALB, browsers reach us through it.
    public var hstsMaxAge = 31_536_000

    public init() {}
}

extension IPNetwork {
    static let defaultTrusted: [IPNetwork] = (try? IPNetwork.list(ClientIdentity.defaultTrustedProxies).get()) ?? []
}

/// Response headers that make a browser treat our JSON as inert data (OWASP Secure Headers,
/// what the original design added in front of the app). The server sends no `Server` header at
/// all, so no version leaks.
public enum SecurityHeaders {
    public static func fields(hstsMaxAge: Int) -> [(name: String, value: String)] {
        [
            ("Strict-Transport-Security", "max-age=\(hstsMaxAge); includeSubDomains"),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "no-referrer"),
            ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
            ("Permissions-Policy", "interest-cohort=()"),
            ("Cache-Control", "no-store"),
        ]
    }
}
