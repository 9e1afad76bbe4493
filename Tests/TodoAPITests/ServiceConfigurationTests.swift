import HTTP
import Net
@testable import Postgres
import Testing
@testable import TodoAPI

@Suite struct ServiceConfigurationTests {
    @Test func defaults() throws {
        let configuration = try ServiceConfiguration.resolve(environment: [:], flags: [:])
        #expect(configuration.http.port == 8000)
        #expect(configuration.http.host == "0.0.0.0")
        #expect(configuration.http.idleTimeout == .seconds(75))
        #expect(configuration.http.headerTimeout == .seconds(10))
        #expect(configuration.http.limits.maxBodyBytes == 32 * 1024)
        // One body limit: the request filter inspects exactly what the parser lets through.
        #expect(configuration.security.waf.maxBodyBytes == 32 * 1024)
        #expect(configuration.http.maxConnectionsPerAddress == 256)
        #expect(configuration.http.bodyMinRate == 500)
        #expect(configuration.http.sendMinRate == 1024)
        #expect(configuration.http.sendBufferBytes == 64 * 1024)
        #expect(configuration.drainTimeout == .seconds(25))
        #expect(configuration.threads >= 1)
        #expect(configuration.pool.requestTimeout == .seconds(3))
    }

    @Test func slowClientSettings() throws {
        let configuration = try ServiceConfiguration.resolve(environment: [
            "MAX_BODY_SIZE": "65536", "MAX_CONNECTIONS_PER_IP": "0", "BODY_MIN_RATE": "0", "SEND_MIN_RATE": "2048",
            "SEND_BUFFER_SIZE": "0",
        ], flags: [:])
        #expect(configuration.http.limits.maxBodyBytes == 65536)
        #expect(configuration.security.waf.maxBodyBytes == 65536)
        #expect(configuration.http.maxConnectionsPerAddress == 0)
        #expect(configuration.http.bodyMinRate == 0)
        #expect(configuration.http.sendMinRate == 2048)
        #expect(configuration.http.sendBufferBytes == 0)
        #expect(throws: ConfigurationError.self) { try ServiceConfiguration.resolve(environment: ["SEND_BUFFER_SIZE": "100"], flags: [:]) }
        #expect(throws: ConfigurationError.self) { try ServiceConfiguration.resolve(environment: ["BODY_MIN_RATE": "-1"], flags: [:]) }
    }

    @Test func databaseRequestTimeout() throws {
        let configuration = try ServiceConfiguration.resolve(environment: ["DB_REQUEST_TIMEOUT": "1500ms"], flags: [:])
        #expect(configuration.pool.requestTimeout == .milliseconds(1500))
        // The drain limit of a connection that stopped answering follows it.
        #expect(configuration.pool.pipelineRules.drainLimit == .milliseconds(1500))
        let flagged = try ServiceConfiguration.resolve(environment: [:], flags: ["db-request-timeout": "10s"])
        #expect(flagged.pool.requestTimeout == .seconds(10))
    }

    @Test func flagsOverrideEnvironment() throws {
        let configuration = try ServiceConfiguration.resolve(
            environment: ["PORT": "9000", "THREADS": "3", "IDLE_TIMEOUT": "90s"],
            flags: ["port": "9100"])
        #expect(configuration.http.port == 9100)
        #expect(configuration.threads == 3)
        #expect(configuration.http.idleTimeout == .seconds(90))
        // A flag wins without its variable being read: `PORT=abc todo-api --port 0` serves.
        let flagged = try ServiceConfiguration.resolve(environment: ["PORT": "abc"], flags: ["port": "0"])
        #expect(flagged.http.port == 0)
        // A command reads only its own settings (`migrate` never reads PORT).
        let migrating = try ServiceConfiguration.resolve(environment: ["PORT": "abc", "DB_POOL_MAX": "7"], flags: [:]) {
            $0.environment.hasPrefix("DB_")
        }
        #expect(migrating.pool.maxConnections == 7)
    }

    @Test(arguments: [("PORT", "eighty"), ("PORT", "70000"), ("THREADS", "0"), ("IDLE_TIMEOUT", "soon"),
                      ("MAX_BODY_SIZE", "-1"), ("LOG_LEVEL", "loud"), ("HEADER_TIMEOUT", "0s"),
                      ("DB_REQUEST_TIMEOUT", "0s"), ("DB_REQUEST_TIMEOUT", "later")])
    func invalidValuesNameTheSetting(name: String, value: String) {
        #expect {
            _ = try ServiceConfiguration.resolve(environment: [name: value], flags: [:])
        } throws: { error in
            (error as? ConfigurationError)?.setting == name && "\(error)".contains(value)
        }
    }

    @Test func everySettingHasAFlagAndAnEnvVar() {
        let names = ServiceConfiguration.settings.map(\.environment)
        #expect(Set(names).count == names.count)
        #expect(names.contains("PORT") && names.contains("HOST") && names.contains("THREADS"))
    }
}

@Suite struct HealthRouteTests {
    @Test func healthIsOKJSON() throws {
        let router = Application.makeRouter()
        guard case .handler(.sync(let handler), let route, _) = router.match(.get, path: "/health") else {
            Issue.record("no sync GET /health")
            return
        }
        #expect(route == "/health")
        let response = handler(HTTPRequest(head: try head("GET /health HTTP/1.1\r\nHost: t\r\n\r\n"), body: []))
        #expect(response.status == .ok)
        #expect(response.contentType == "application/json")
        #expect(String(decoding: response.body, as: UTF8.self) == #"{"status":"ok"}"#)
        // HEAD is served by the same handler.
        guard case .handler = router.match(.head, path: "/health") else {
            Issue.record("HEAD /health not routed")
            return
        }
    }

    func head(_ raw: String) throws -> HTTPRequestHead {
        var parser = HTTPParser()
        let bytes = Array(raw.utf8)
        guard case .head(let head) = bytes.withUnsafeBytes({ parser.parse($0) }).event else {
            throw ConfigurationError(setting: "test", value: raw, help: "not a head")
        }
        return head
    }
}

@Suite struct SecuritySettingsTests {
    @Test func defaultsFollowTheDesignsWAF() throws {
        let configuration = try ServiceConfiguration.resolve(environment: [:], flags: [:])
        #expect(configuration.security.rateLimit?.limit == 5000)
        #expect(configuration.security.rateLimit?.windowSeconds == 300)
        #expect(configuration.security.writeRateLimit == nil)
        #expect(configuration.security.waf.enabled)
        #expect(configuration.security.trustedProxies.count == 6)
    }

    @Test func settingsApply() throws {
        let configuration = try ServiceConfiguration.resolve(environment: [
            "RATE_LIMIT": "100/1m", "RATE_LIMIT_BURST": "20", "RATE_LIMIT_WRITES": "10/1m", "TRUSTED_PROXIES": "10.1.0.0/16",
            "WAF_RULES": "sqli=count,GenericRFI=off", "WAF_DENY_IPS": "203.0.113.0/24", "WAF": "on",
        ], flags: [:])
        #expect(configuration.security.rateLimit?.limit == 100)
        #expect(configuration.security.rateLimit?.burst == 20)
        #expect(configuration.security.writeRateLimit?.limit == 10)
        #expect(configuration.security.trustedProxies.map(\.description) == ["10.1.0.0/16"])
        #expect(configuration.security.waf.denyList.count == 1)
        let off = try ServiceConfiguration.resolve(environment: ["RATE_LIMIT": "off", "TRUSTED_PROXIES": "none", "WAF": "off"], flags: [:])
        #expect(off.security.rateLimit == nil)
        #expect(off.security.trustedProxies.isEmpty)
        #expect(!off.security.waf.enabled)
    }

    @Test(arguments: [("RATE_LIMIT", "lots"), ("RATE_LIMIT_BURST", "0"), ("TRUSTED_PROXIES", "10.0.0.0/99"), ("WAF_RULES", "sqli=maybe"),
                      ("WAF_RULES", "nosuchrule=block"), ("WAF", "sometimes"), ("WAF_RULES_FILE", "/nonexistent/rules"), ("WAF_ALLOW_IPS", "x")])
    func invalidSecuritySettingsNameTheSetting(name: String, value: String) {
        #expect {
            _ = try ServiceConfiguration.resolve(environment: [name: value], flags: [:])
        } throws: { error in
            (error as? ConfigurationError)?.setting == name
        }
    }
}
