import HTTP
import Net
import Testing
import TestSupport
@testable import Security

/// The security middleware in a real server over real sockets.
@Suite(.serialized) struct SecurityLiveTests {
    func server(_ configure: (inout SecurityConfiguration) -> Void) throws -> (LiveServer, SecurityFilter) {
        var configuration = SecurityConfiguration()
        configure(&configuration)
        let filter = SecurityFilter(configuration: configuration)
        let server = try LiveServer { http in
            http.requestFilter = filter.requestFilter
            http.responseHeaders = filter.responseHeaders
        }
        return (server, filter)
    }

    func get(_ client: TestClient, _ target: String, headers: String = "User-Agent: test\r\n") throws -> TestResponse {
        try client.send("GET \(target) HTTP/1.1\r\nHost: t\r\n\(headers)\r\n")
        return try client.readResponse()
    }

    @Test func blockedRequestsGet403WithoutRuleInternals() throws {
        let (server, filter) = try server { _ in }
        let client = try TestClient(port: server.port)
        let response = try get(client, "/items/1?q=%27%20or%201%3D1--", headers: "User-Agent: test\r\nX-Request-ID: abc-123\r\n")
        #expect(response.status == 403)
        #expect(response.header("Content-Type") == "application/problem+json")
        #expect(response.text.contains("\"requestId\":\"abc-123\""))
        #expect(!response.text.contains("SQLi") && !response.text.contains("rule"))
        // The connection stays usable, and a clean request passes.
        #expect(try get(client, "/items/1?q=groceries").status == 200)
        let counts = filter.counts()
        #expect(counts.matches.first { $0.rule == "SQLi" && $0.action == "block" }?.count == 1)
    }

    @Test func securityHeadersOnEveryResponse() throws {
        let (server, _) = try server { _ in }
        let client = try TestClient(port: server.port)
        for target in ["/health", "/nowhere", "/items/1?x=%3Cscript%3Ealert(1)%3C/script%3E"] {
            let response = try get(client, target)
            #expect(response.header("X-Content-Type-Options") == "nosniff", "\(target)")
            #expect(response.header("X-Frame-Options") == "DENY")
            #expect(response.header("Referrer-Policy") == "no-referrer")
            #expect(response.header("Content-Security-Policy") == "default-src 'none'; frame-ancestors 'none'")
            // Plain HTTP, not through a proxy that says otherwise: RFC 6797 §7.2 forbids it here.
            #expect(response.header("Strict-Transport-Security") == nil)
            #expect(response.header("Cache-Control") == "no-store")
            #expect(response.header("Server") == nil)
        }
        // Also on what the parser refuses before any handler runs.
        let raw = try TestClient(port: server.port)
        try raw.send("GET / HTTP/1.1\r\n\r\n")  // no Host
        let refused = try raw.readResponse()
        #expect(refused.status == 400)
        #expect(refused.header("X-Content-Type-Options") == "nosniff")
    }

    /// HSTS goes only on responses to requests the trusted proxy (the ALB's HTTPS listener) says
    /// came over HTTPS; a refusal carries it too, and the rate-limit fields still follow it.
    @Test func strictTransportSecurityOnlyOverHTTPSFromATrustedProxy() throws {
        let (server, _) = try server { $0.rateLimit = RateLimitPolicy(limit: 2, windowSeconds: 60, burst: 2) }
        let client = try TestClient(port: server.port)
        let hsts = "max-age=31536000; includeSubDomains"
        let secure = try get(client, "/items/1", headers: "User-Agent: test\r\nX-Forwarded-Proto: https\r\n")
        #expect(secure.status == 200)
        #expect(secure.header("Strict-Transport-Security") == hsts)
        #expect(secure.header("RateLimit") == "\"default\";r=1;t=30")
        #expect(secure.header("X-Frame-Options") == "DENY")
        for value in ["HTTPS", " https ", "http, https"] {
            #expect(try get(client, "/health", headers: "X-Forwarded-Proto: \(value)\r\n").header("Strict-Transport-Security") == hsts, "\(value)")
        }
        for value in ["http", "https, http", "httpsx", ""] {
            #expect(try get(client, "/health", headers: "X-Forwarded-Proto: \(value)\r\n").header("Strict-Transport-Security") == nil, "\(value)")
        }
        let refused = try get(client, "/items/1?q=%27%20or%201%3D1--", headers: "User-Agent: test\r\nX-Forwarded-Proto: https\r\n")
        #expect(refused.status == 403)
        #expect(refused.header("Strict-Transport-Security") == hsts)
        _ = try get(client, "/items/1")
        let limited = try get(client, "/items/1", headers: "User-Agent: test\r\nX-Forwarded-Proto: https\r\n")
        #expect(limited.status == 429)
        #expect(limited.header("Strict-Transport-Security") == hsts)
        #expect(limited.header("Retry-After") != nil)

        // From a peer that is not a trusted proxy, the header proves nothing.
        let (direct, _) = try self.server { $0.trustedProxies = [] }
        let stranger = try TestClient(port: direct.port)
        #expect(try get(stranger, "/health", headers: "X-Forwarded-Proto: https\r\n").header("Strict-Transport-Security") == nil)
    }

    @Test func rateLimitAnswers429WithRetryAfterAndRateLimitFields() throws {
        let (server, filter) = try server { $0.rateLimit = RateLimitPolicy(limit: 3, windowSeconds: 60, burst: 3) }
        let client = try TestClient(port: server.port)
        for _ in 0..<3 { #expect(try get(client, "/items/1").status == 200) }
        let limited = try get(client, "/items/1")
        #expect(limited.status == 429)
        let retryAfter = Int(limited.header("Retry-After") ?? "") ?? 0
        #expect((1...20).contains(retryAfter))  // one request per 20 s
        #expect(limited.header("RateLimit-Policy") == "\"default\";q=3;w=60")
        #expect(limited.header("RateLimit") == "\"default\";r=0;t=\(retryAfter)")
        #expect(limited.text.contains("\"status\":429"))
        // /health is exempt: the ALB must never be limited.
        for _ in 0..<5 { #expect(try get(client, "/health").status == 200) }
        #expect(filter.counts().rateLimited == 1)
    }

    @Test func everyCoveredResponseSaysWhatIsLeft() throws {
        let (server, _) = try server {
            $0.rateLimit = RateLimitPolicy(limit: 5, windowSeconds: 3600, burst: 5)
            $0.writeRateLimit = RateLimitPolicy(limit: 2, windowSeconds: 3600, burst: 2)
        }
        let client = try TestClient(port: server.port)
        let first = try get(client, "/items/1")
        #expect(first.header("RateLimit-Policy") == "\"default\";q=5;w=3600")
        // GCRA: one request uses one emission interval (720 s), back in full after it.
        #expect(first.header("RateLimit") == "\"default\";r=4;t=720")
        let second = try get(client, "/no/such/route")  // a 404 is covered too
        #expect(second.status == 404)
        #expect(second.header("RateLimit") == "\"default\";r=3;t=1440")
        // A write meets both policies and says so for both.
        try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nUser-Agent: test\r\nContent-Length: 2\r\n\r\nok")
        let write = try client.readResponse()
        #expect(write.status == 200)
        #expect(write.header("RateLimit-Policy") == "\"default\";q=5;w=3600, \"writes\";q=2;w=3600")
        #expect(write.header("RateLimit") == "\"default\";r=2;t=2160, \"writes\";r=1;t=1800")
        // /health is outside every policy.
        #expect(try get(client, "/health").header("RateLimit") == nil)
    }

    // Windows of an hour: a token refills every 30 min at most, so no timing can change the counts.
    @Test func forwardedForFromAnUntrustedPeerIsIgnored() throws {
        // The test client's peer is 127.0.0.1; with no trusted proxies its X-Forwarded-For is a lie.
        let (server, _) = try server {
            $0.trustedProxies = []
            $0.rateLimit = RateLimitPolicy(limit: 2, windowSeconds: 3600, burst: 2)
        }
        let client = try TestClient(port: server.port)
        let statuses = try (1...4).map { n in try get(client, "/items/1", headers: "User-Agent: t\r\nX-Forwarded-For: 198.51.100.\(n)\r\n").status }
        #expect(statuses == [200, 200, 429, 429])
    }

    @Test func forwardedForFromATrustedProxyNamesTheClient() throws {
        let (server, _) = try server { $0.rateLimit = RateLimitPolicy(limit: 2, windowSeconds: 3600, burst: 2) }  // 127/8 trusted
        let client = try TestClient(port: server.port)
        // Distinct clients behind the proxy have distinct budgets …
        let statuses = try (1...4).map { n in try get(client, "/items/1", headers: "User-Agent: t\r\nX-Forwarded-For: 198.51.100.\(n)\r\n").status }
        #expect(statuses == [200, 200, 200, 200])
        // … and one client cannot escape its budget by prepending addresses.
        let spoofed = try (1...3).map { n in try get(client, "/items/1", headers: "User-Agent: t\r\nX-Forwarded-For: 6.6.6.\(n), 198.51.100.50\r\n").status }
        #expect(spoofed == [200, 200, 429])
    }

    @Test func limitsAreSharedAcrossLoops() throws {
        let (server, _) = try server { $0.rateLimit = RateLimitPolicy(limit: 10, windowSeconds: 3600, burst: 10) }
        // Many connections land on both loops of the server; together they get exactly the burst.
        var ok = 0, limited = 0
        for _ in 0..<8 {
            let client = try TestClient(port: server.port)
            for _ in 0..<3 {
                let status = try get(client, "/items/1").status
                if status == 200 { ok += 1 } else if status == 429 { limited += 1 }
            }
        }
        #expect(ok == 10)
        #expect(limited == 14)
    }

    @Test func countModeLetsAttacksThrough() throws {
        let (server, filter) = try server { _ = $0.waf.apply(rules: "all=count") }
        let client = try TestClient(port: server.port)
        #expect(try get(client, "/items/1?q=%3Cscript%3Ealert(1)%3C/script%3E").status == 200)
        #expect(filter.counts().matches.first { $0.rule == "CrossSiteScripting" && $0.action == "count" }?.count == 1)
    }
}
