import Glibc
import HTTP
import Logging
import Net
import Synchronization

/// The security middleware, in the order a request meets it: client identity (trusted proxies,
/// `X-Forwarded-For`) → request filter (WAF rules) → rate limit → the router.
///
/// The filter runs before the limiter so that a refused attack costs no rate budget and an attack
/// is always answered 403, whatever the client's budget (AWS WAF evaluates rules by priority and
/// a terminating match ends the evaluation the same way). Runs on the loops; shares only the
/// limiter (sharded locks) and the counters (atomics).
public final class SecurityFilter: Sendable {
    public let configuration: SecurityConfiguration
    let identity: ClientIdentity
    let inspector: RequestInspector
    let limiter: RateLimiter?
    let writeLimiter: RateLimiter?
    let logger = Logger(label: "security")
    /// `waf_matches_total{rule,action}`: [rule][0 = block, 1 = count].
    let matchCounts: [Counter]
    let limitedCount = Atomic<Int>(0)
    /// `RateLimit-Policy` lines, rendered once: for reads, and for writes (both policies); each
    /// followed by the start of the `RateLimit` line, copied whole per request (appending the
    /// literals and the policy's name one by one was ~850 instructions a request, callgrind).
    let policyField: [UInt8]
    let writePolicyField: [UInt8]
    /// `"default";r=` and `"writes";r=`: where a policy's `RateLimit` entry starts.
    let limiterEntry: [UInt8]
    let writeLimiterEntry: [UInt8]
    /// The `Strict-Transport-Security` line, for requests that came over HTTPS.
    let strictTransportSecurity: [UInt8]

    public init(configuration: SecurityConfiguration) {
        self.configuration = configuration
        identity = ClientIdentity(trustedProxies: configuration.trustedProxies)
        inspector = RequestInspector(configuration: configuration.waf)
        limiter = configuration.rateLimit.map { RateLimiter(policy: $0, maxClients: configuration.maxTrackedClients) }
        writeLimiter = configuration.writeRateLimit.map {
            var policy = $0
            policy.name = "writes"
            return RateLimiter(policy: policy, maxClients: configuration.maxTrackedClients)
        }
        matchCounts = (0..<(WAFRule.allCases.count * 2)).map { _ in Counter() }
        policyField = Self.policyField([limiter?.policy].compactMap { $0 })
        writePolicyField = Self.policyField([limiter?.policy, writeLimiter?.policy].compactMap { $0 })
        limiterEntry = Self.entryStart(limiter?.policy)
        writeLimiterEntry = Self.entryStart(writeLimiter?.policy)
        strictTransportSecurity = SecurityHeaders.strictTransportSecurity(maxAge: configuration.hstsMaxAge)
    }

    /// The hook the HTTP server calls for every request.
    public var requestFilter: RequestFilter {
        RequestFilter { [self] request, peer in self.filter(&request, peer: peer) }
    }

    /// A peer in `TRUSTED_PROXIES` (the ALB): exempt from the per-address connection cap, its
    /// connections carry many clients.
    public func isTrustedProxy(_ peer: PeerAddress) -> Bool {
        IPAddress(peer).map(identity.isTrusted) ?? false
    }

    public var responseHeaders: StaticResponseHeaders {
        StaticResponseHeaders(SecurityHeaders.fields())
    }

    /// `now`: the monotonic time in nanoseconds for the rate limiters; nil reads the clock when a
    /// limiter needs it (not for `/health`: a clock read is ~25 ns under a hypervisor, perf).
    func filter(_ request: inout HTTPRequest, peer: PeerAddress, now: Int64? = nil) -> HTTPResponse? {
        let peerAddress = IPAddress(peer) ?? IPAddress(high: 0, low: 0)
        var client = peerAddress
        let (forwarded, https) = forwardedFields(request.head)
        if !forwarded.isEmpty {
            client = identity.resolve(peer: peerAddress, forwardedFor: forwarded)
        }
        // Set before any refusal: a 403 or 429 over HTTPS carries it too.
        if https && identity.isTrusted(peerAddress) { request.responseFields = strictTransportSecurity }
        let clientText = client == peerAddress ? nil : client.description
        request.clientIP = clientText

        let verdict = inspector.inspect(request, client: client, peer: peerAddress)
        // Checked first: iterating copied the (nearly always empty) array of matches.
        if !verdict.matches.isEmpty { report(verdict.matches, of: request, client: clientText ?? peer.description) }
        if verdict.blocking != nil {
            return .problem(.forbidden, detail: "The request was refused by the request filter.", requestID: request.requestID)
        }

        // /health and /health/ready are exempt: the ALB and container checks must never be limited.
        if Self.isHealthPath(request.head.path) { return nil }
        // draft-ietf-httpapi-ratelimit-headers: every response the policies cover says what is
        // left, so a client can slow down before it is refused. One buffer per request.
        let writes: RateLimiter?
        switch request.head.method {
        case .post, .put, .patch, .delete: writes = writeLimiter
        default: writes = nil
        }
        guard limiter != nil || writes != nil else { return nil }
        let now = now ?? MonotonicTime.now().nanoseconds
        // After `Strict-Transport-Security` when the request came over HTTPS (set above).
        let policies = writes != nil ? writePolicyField : policyField
        var fields = request.responseFields
        fields.reserveCapacity(fields.count + policies.count + 64)
        fields.append(contentsOf: policies)
        if let limiter {
            if let refusal = limit(limiter, entry: limiterEntry, client, request: request, now: now, appendingTo: &fields) { return refusal }
        }
        if let writes {
            if limiter != nil { append(", ", to: &fields) }
            if let refusal = limit(writes, entry: writeLimiterEntry, client, request: request, now: now, appendingTo: &fields) { return refusal }
        }
        append("\r\n", to: &fields)
        request.responseFields = fields
        return nil
    }

    /// Counts and logs each match of a request (blocking or counted).
    private func report(_ matches: [WAFMatch], of request: HTTPRequest, client: String) {
        for match in matches {
            matchCounts[match.rule.rawValue * 2 + (match.action == .block ? 0 : 1)].value.add(1, ordering: .relaxed)
            logger.warning("request filter match", metadata: [
                "event": "waf_match", "rule": .string(match.rule.id), "action": .string(match.action.rawValue),
                "location": .string(match.location), "reason": .string(match.reason), "excerpt": .string(match.excerpt),
                "clientIp": .string(client), "requestId": .string(request.requestID),
                "method": .string(request.head.method.description), "path": .string(String(request.head.path.prefix(256))),
            ])
        }
    }

    /// Whether `path` starts with `/health`, compared on the contiguous bytes (the generic
    /// `starts(with:)` over a substring's UTF-8 view was 1.6 % of a `GET /health`, perf).
    static func isHealthPath(_ path: Substring) -> Bool {
        var path = path
        return path.withUTF8 { bytes in
            guard bytes.count >= 7 else { return false }
            let prefix: StaticString = "/health"
            return prefix.withUTF8Buffer { wanted in memcmp(bytes.baseAddress!, wanted.baseAddress!, 7) == 0 }
        }
    }

    /// `RateLimit-Policy: "default";q=5000;w=300, "writes";q=600;w=300` and its CRLF.
    static func policyField(_ policies: [RateLimitPolicy]) -> [UInt8] {
        guard !policies.isEmpty else { return [] }
        return Array("RateLimit-Policy: \(policies.map(\.policyHeader).joined(separator: ", "))\r\nRateLimit: ".utf8)
    }

    static func entryStart(_ policy: RateLimitPolicy?) -> [UInt8] {
        policy.map { Array("\"\($0.name)\";r=".utf8) } ?? []
    }

    /// A literal's bytes at once (a literal's `.utf8` goes through the generic sequence append).
    @inline(__always)
    private func append(_ text: StaticString, to fields: inout [UInt8]) {
        text.withUTF8Buffer { fields.append(contentsOf: $0) }
    }

    /// Allowed: appends `"name";r=<remaining>;t=<reset>` to `fields` and returns nil. Limited: the 429.
    private func limit(_ limiter: RateLimiter, entry: [UInt8], _ client: IPAddress, request: HTTPRequest, now: Int64,
                       appendingTo fields: inout [UInt8]) -> HTTPResponse? {
        let retryAfter: Int
        switch limiter.check(client, now: now) {
        case .allowed(let remaining, let reset):
            fields.append(contentsOf: entry)
            ASCIIDigits.appendDecimal(remaining, to: &fields)
            append(";t=", to: &fields)
            ASCIIDigits.appendDecimal(reset, to: &fields)
            return nil
        case .limited(let seconds):
            retryAfter = seconds
        }
        limitedCount.add(1, ordering: .relaxed)
        let policy = limiter.policy
        logger.info("rate limited", metadata: [
            "event": "rate_limited", "clientIp": .string(client.description), "requestId": .string(request.requestID),
            "retryAfter": .stringConvertible(retryAfter),
        ])
        // draft-ietf-httpapi-ratelimit-headers: the policy, and what is left (none) and when.
        return .problem(.tooManyRequests, detail: "Too many requests from this client; retry after \(retryAfter) s.",
                        requestID: request.requestID, headers: [
                            ("Retry-After", String(retryAfter)),
                            ("RateLimit-Policy", policy.policyHeader),
                            ("RateLimit", "\"\(policy.name)\";r=0;t=\(retryAfter)"),
                        ])
    }

    /// Every `X-Forwarded-For` value in order, and whether the last `X-Forwarded-Proto` entry is
    /// `https` (the ALB sets it to its listener's protocol). Either is believed only from a
    /// trusted proxy: the caller checks the peer.
    private func forwardedFields(_ head: HTTPRequestHead) -> (forwardedFor: [ArraySlice<UInt8>], https: Bool) {
        var values: [ArraySlice<UInt8>] = []
        var https = false
        // Neither field at all (a client that is not behind the ALB, a probe): no walk over every
        // field's name. The slots note each field's first line, so absent there is absent.
        if head.fields.rawValue(.forwardedFor) == nil && head.fields.rawValue(.forwardedProto) == nil { return (values, https) }
        head.fields.forEachRaw { name, value in
            if name.equalsIgnoringASCIICase("x-forwarded-for") { values.append(value) }
            if name.equalsIgnoringASCIICase("x-forwarded-proto") { https = Self.lastEntryIsHTTPS(value) }
        }
        return (values, https)
    }

    /// `https` (any case, optional whitespace) after the last comma of a field value.
    static func lastEntryIsHTTPS(_ value: ArraySlice<UInt8>) -> Bool {
        var start = (value.lastIndex(of: UInt8(ascii: ",")) ?? value.startIndex - 1) + 1
        var end = value.endIndex
        while start < end && (value[start] == 0x20 || value[start] == 0x09) { start += 1 }
        while end > start && (value[end - 1] == 0x20 || value[end - 1] == 0x09) { end -= 1 }
        return value[start..<end].equalsIgnoringASCIICase("https")
    }

    // MARK: Metrics

    public struct Counts: Sendable {
        public var matches: [(rule: String, action: String, count: Int)]
        public var rateLimited: Int
        public var trackedClients: Int
    }

    public func counts() -> Counts {
        var matches: [(String, String, Int)] = []
        for rule in WAFRule.allCases {
            for (offset, action) in ["block", "count"].enumerated() {
                let count = matchCounts[rule.rawValue * 2 + offset].value.load(ordering: .relaxed)
                if count > 0 || offset == 0 { matches.append((rule.id, action, count)) }
            }
        }
        return Counts(matches: matches, rateLimited: limitedCount.load(ordering: .relaxed),
                      trackedClients: (limiter?.trackedClients ?? 0) + (writeLimiter?.trackedClients ?? 0))
    }
}

/// An atomic counter in a box, so that arrays can hold them.
final class Counter: Sendable {
    let value = Atomic<Int>(0)
}
