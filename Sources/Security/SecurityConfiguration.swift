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
    /// Sent only on requests that arrived over HTTPS (`SecurityHeaders.strictTransportSecurity`).
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
    /// On every response, the HTTP layer's own refusals included.
    public static func fields() -> [(name: String, value: String)] {
        [
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "no-referrer"),
            ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
            ("Permissions-Policy", "interest-cohort=()"),
            ("Cache-Control", "no-store"),
        ]
    }

    /// `Strict-Transport-Security`, for responses to requests that came over HTTPS: RFC 6797
    /// §7.2, "An HSTS Host MUST NOT include the STS header field in HTTP responses conveyed over
    /// non-secure transport" (a browser ignores it there anyway, §8.1). TLS ends at the ALB's
    /// HTTPS listener, which says so in `X-Forwarded-Proto` (`SecurityFilter` believes it from
    /// a trusted proxy only), as Django's `SECURE_PROXY_SSL_HEADER` does.
    public static func strictTransportSecurity(maxAge: Int) -> [UInt8] {
        Array("Strict-Transport-Security: max-age=\(maxAge); includeSubDomains\r\n".utf8)
    }
}
