import HTTP
import Net
import Postgres
import Security

/// The service's configuration: env vars, overridden by command-line flags, validated once at
/// start-up. An invalid value is a `ConfigurationError` naming the setting (exit code 2).
public struct ServiceConfiguration: Sendable {
    public var http: HTTPServerConfiguration = {
        var http = HTTPServerConfiguration()
        // One address may hold at most this many connections (MAX_CONNECTIONS_PER_IP); the ALB
        // and other trusted proxies are exempt. 256: far above what one browser or API client
        // opens (6–16), far below the 10,000 of the whole table.
        http.maxConnectionsPerAddress = 256
        return http
    }()
    /// Event-loop threads; default: the CPUs this process may use (affinity and cgroup quota).
    public var threads = CPUCount.available()
    /// Graceful-shutdown budget; under ECS's default 30 s stopTimeout so we exit before SIGKILL.
    public var drainTimeout = TimeSpan.seconds(25)
    public var logLevel = "info"
    /// `json` (one object per line, for Fluent Bit) or `text` (for a person at a terminal).
    public var logFormat = "json"
    /// The `service` field of every log line.
    public var serviceName = "todo-api"
    /// The admin listener serving `/metrics` (never the ALB's port); 0 turns it off.
    public var metricsPort = 9090
    public var pool = PostgresPoolConfiguration()
    /// Bounds every query (sent as the session's statement_timeout).
    public var statementTimeout = TimeSpan.seconds(5)
    /// Bounds every connection attempt (TCP, TLS and authentication together).
    public var connectTimeout = TimeSpan.seconds(5)
    /// Where `migrate` and `serve --migrate` find the numbered SQL files.
    public var migrationsDirectory = "Migrations"
    /// Apply pending migrations before listening.
    public var migrateOnStart = false
    /// Trusted proxies, rate limits, request filter rules.
    public var security = SecurityConfiguration()
    /// Where the database credentials come from when they rotate (docs: README, "Credential rotation").
    public var databaseCredentials = DatabaseCredentialConfiguration()

    /// `AUTH` and its settings.
    public var auth = AuthConfiguration()

    /// Flags that take no value (`--migrate`, not `--migrate true`).
    public static let switches: Set<String> = ["migrate", "db-iam-auth"]

    public init() {
        security.waf.inertPaths = Application.inertPaths
    }

    /// One setting: its env var, its flag, how to read it and where it goes.
    public struct Setting: Sendable {
        public let environment: String
        public let flag: String
        public let help: String
        let apply: @Sendable (inout ServiceConfiguration, String) -> Bool
    }

    public static let settings: [Setting] = [
        Setting(environment: "HOST", flag: "host", help: "Address to listen on (default 0.0.0.0).") { c, v in
            guard !v.isEmpty else { return false }
            c.http.host = v
            return true
        },
        Setting(environment: "PORT", flag: "port", help: "TCP port (default 8000; 0 picks a free one).") { c, v in
            guard let port = Int(v), (0...65535).contains(port) else { return false }
            c.http.port = port
            return true
        },
        integer("THREADS", "threads", 1...256,
                "Event-loop threads (default: usable CPUs).") { $0.threads = $1 },
        Setting(environment: "MAX_BODY_SIZE", flag: "max-body-size",
                help: "Largest request body in bytes (default 32768); larger gets 413. The request filter inspects every byte up to it.") { c, v in
            guard let n = Int(v), (0...(64 << 20)).contains(n) else { return false }
            c.http.limits.maxBodyBytes = n
            return true
        },
        integer("MAX_CONNECTIONS", "max-connections", 1...1_000_000,
                "Open connections per process (default 10000).") { $0.http.maxConnections = $1 },
        integer("MAX_CONNECTIONS_PER_IP", "max-connections-per-ip", 0...1_000_000,
                "Open connections per client address, trusted proxies exempt (default 256; 0: no cap).") { $0.http.maxConnectionsPerAddress = $1 },
        timeout("HEADER_TIMEOUT", "header-timeout", "Time to receive a request head, from its first byte (default 10s).") { $0.http.headerTimeout = $1 },
        timeout("BODY_TIMEOUT", "body-timeout", "Longest pause inside a request body (default 15s).") { $0.http.bodyTimeout = $1 },
        integer("BODY_MIN_RATE", "body-min-rate", 0...1_000_000_000,
                "Bytes/s a request body must average after its first 10 s, else 408 (default 500; 0: off).") { $0.http.bodyMinRate = $1 },
        timeout("WRITE_TIMEOUT", "write-timeout", "Longest stall writing a response (default 15s).") { $0.http.writeTimeout = $1 },
        integer("SEND_MIN_RATE", "send-min-rate", 0...1_000_000_000,
                "Bytes/s a client must take a response at, on average after its first 10 s, else the connection is reset (default 1024; 0: off).") { $0.http.sendMinRate = $1 },
        Setting(environment: "SEND_BUFFER_SIZE", flag: "send-buffer-size",
                help: "Kernel send buffer per connection in bytes (default 65536; 0: the kernel's auto-tuning).") { c, v in
            guard let n = Int(v), n == 0 || (4096...(64 << 20)).contains(n) else { return false }
            c.http.sendBufferBytes = n
            return true
        },
        timeout("IDLE_TIMEOUT", "idle-timeout", "Idle keep-alive connections close after this (default 75s).") { $0.http.idleTimeout = $1 },
        timeout("DRAIN_TIMEOUT", "drain-timeout", "Graceful shutdown budget (default 25s).") { $0.drainTimeout = $1 },
        integer("DB_POOL_MIN", "db-pool-min", 0...1000,
                "Database connections kept open per process (default 2).") { $0.pool.minConnections = $1 },
        integer("DB_POOL_MAX", "db-pool-max", 1...1000,
                "Database connections at most per process (default 8; at least 1 per thread).") { $0.pool.maxConnections = $1 },
        timeout("DB_ACQUIRE_TIMEOUT", "db-acquire-timeout", "Longest wait for a database connection before 503 (default 2s).") { $0.pool.acquireTimeout = $1 },
        timeout("DB_REQUEST_TIMEOUT", "db-request-timeout",
                "A request's database work ends by this, with 503 and the statement cancelled (default 3s; DB_ACQUIRE_TIMEOUT bounds the wait for a connection within it).") { $0.pool.requestTimeout = $1 },
        timeout("DB_STATEMENT_TIMEOUT", "db-statement-timeout", "Longest a query may run on the server (default 5s).") { $0.statementTimeout = $1 },
        timeout("DB_CONNECT_TIMEOUT", "db-connect-timeout", "Longest a connection attempt may take (default 5s).") { $0.connectTimeout = $1 },
        Setting(environment: "DB_SECRET_ID", flag: "db-secret-id",
                help: "Secrets Manager secret (ARN or name) with the database credentials, read at start, every DB_SECRET_REFRESH and when PostgreSQL refuses the password.") { c, v in
            guard !v.isEmpty, v.utf8.count <= 2048, v.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F || $0 == 0x20 }) else { return false }
            c.databaseCredentials.secretId = v
            return true
        },
        timeout("DB_SECRET_REFRESH", "db-secret-refresh", "How often DB_SECRET_ID is read again (default 1h).") { $0.databaseCredentials.secretRefresh = $1 },
        Setting(environment: "DB_IAM_AUTH", flag: "db-iam-auth",
                help: "Connect with RDS IAM authentication tokens instead of a password (true/false; needs sslmode require or stricter).") { c, v in
            switch v.lowercased() {
            case "true", "1", "yes": c.databaseCredentials.iamAuthentication = true
            case "false", "0", "no", "": c.databaseCredentials.iamAuthentication = false
            default: return false
            }
            return true
        },
        timeout("DB_MAX_LIFETIME", "db-max-lifetime", "Connections are replaced after this, ±10% (default 30m).") { $0.pool.maxLifetime = $1 },
        timeout("DB_IDLE_TIMEOUT", "db-idle-timeout", "Connections above the minimum close after this idle (default 5m).") { $0.pool.idleTimeout = $1 },
        Setting(environment: "MIGRATIONS_DIR", flag: "migrations-dir", help: "Directory of NNNN_name.sql migrations (default Migrations).") { c, v in
            guard !v.isEmpty else { return false }
            c.migrationsDirectory = v
            return true
        },
        Setting(environment: "MIGRATE_ON_START", flag: "migrate", help: "Apply pending migrations before listening (true/false; the flag takes no value).") { c, v in
            switch v.lowercased() {
            case "true", "1", "yes": c.migrateOnStart = true
            case "false", "0", "no", "": c.migrateOnStart = false
            default: return false
            }
            return true
        },
        Setting(environment: "LOG_FORMAT", flag: "log-format", help: "json (default) or text.") { c, v in
            guard v == "json" || v == "text" else { return false }
            c.logFormat = v
            return true
        },
        Setting(environment: "SERVICE_NAME", flag: "service-name", help: "The service field of log lines (default todo-api).") { c, v in
            guard !v.isEmpty, v.utf8.count <= 64 else { return false }
            c.serviceName = v
            return true
        },
        Setting(environment: "METRICS_PORT", flag: "metrics-port", help: "Admin port for /metrics (default 9090; 0: off).") { c, v in
            guard let port = Int(v), (0...65535).contains(port) else { return false }
            c.metricsPort = port
            return true
        },
        Setting(environment: "TRUSTED_PROXIES", flag: "trusted-proxies", help: "CIDRs whose X-Forwarded-For is believed (default private ranges and loopback; 'none').") { c, v in
            if v.lowercased() == "none" || v.isEmpty { c.security.trustedProxies = []; return true }
            guard case .success(let networks) = IPNetwork.list(v) else { return false }
            c.security.trustedProxies = networks
            return true
        },
        rateLimit("RATE_LIMIT", "rate-limit", "Requests per client IP, e.g. 5000/5m (default), 100/1s; 'off'.") { $0.security.rateLimit = $1 },
        Setting(environment: "RATE_LIMIT_BURST", flag: "rate-limit-burst", help: "Requests a client may send at once (default: the limit).") { c, v in
            guard let n = Int(v), n >= 1, n <= 100_000_000 else { return false }
            c.security.rateLimit?.burst = n
            return true
        },
        rateLimit("RATE_LIMIT_WRITES", "rate-limit-writes", "Stricter limit for POST/PUT/PATCH/DELETE, e.g. 600/5m (default off).") { $0.security.writeRateLimit = $1 },
        integer("RATE_LIMIT_MAX_CLIENTS", "rate-limit-max-clients", 64...10_000_000,
                "Client IPs tracked at most (default 100000; about 60 bytes each).") { $0.security.maxTrackedClients = $1 },
        Setting(environment: "WAF", flag: "waf", help: "Request filter on (default) or off.") { c, v in
            switch v.lowercased() {
            case "on", "true", "1": c.security.waf.enabled = true
            case "off", "false", "0": c.security.waf.enabled = false
            default: return false
            }
            return true
        },
        Setting(environment: "WAF_RULES_FILE", flag: "waf-rules-file", help: "File of 'rule-or-group action' lines (block, count, off).") { c, v in
            c.security.waf.apply(rulesFile: v) == nil
        },
        Setting(environment: "WAF_RULES", flag: "waf-rules", help: "Rule actions, e.g. sqli=count,GenericRFI=off (after WAF_RULES_FILE).") { c, v in
            c.security.waf.apply(rules: v) == nil
        },
        Setting(environment: "WAF_ALLOW_IPS", flag: "waf-allow-ips", help: "CIDRs never filtered.") { c, v in
            guard case .success(let networks) = IPNetwork.list(v) else { return false }
            c.security.waf.allowList = networks
            return true
        },
        Setting(environment: "WAF_DENY_IPS", flag: "waf-deny-ips", help: "CIDRs always refused (403).") { c, v in
            guard case .success(let networks) = IPNetwork.list(v) else { return false }
            c.security.waf.denyList = networks
            return true
        },
        Setting(environment: "AUTH", flag: "auth", help: "off (default: every client can read and change every todo), jwt (Bearer tokens) or alb (the ALB's x-amzn-oidc-data).") { c, v in
            guard let mode = AuthConfiguration.Mode(rawValue: v.lowercased()) else { return false }
            c.auth.mode = mode
            return true
        },
        text("AUTH_ISSUER", "auth-issuer", "AUTH=jwt: the exact iss of accepted tokens (e.g. https://cognito-idp.<region>.amazonaws.com/<pool id>).") { $0.auth.issuer = $1 },
        Setting(environment: "AUTH_AUDIENCE", flag: "auth-audience", help: "AUTH=jwt: accepted audiences, comma-separated (aud, or client_id with AUTH_TOKEN_USE=access).") { c, v in
            let audiences = v.split(separator: ",").map { $0.trimmingWhitespace }.filter { !$0.isEmpty }
            guard !audiences.isEmpty, audiences.allSatisfy({ $0.utf8.count <= 512 }) else { return false }
            c.auth.audiences = audiences
            return true
        },
        Setting(environment: "AUTH_TOKEN_USE", flag: "auth-token-use", help: "AUTH=jwt: access or id: the Cognito token_use claim must equal it (default: not checked).") { c, v in
            guard v == "access" || v == "id" else { return v.isEmpty }
            c.auth.tokenUse = v
            return true
        },
        text("AUTH_JWKS_FILE", "auth-jwks-file", "AUTH=jwt: a JWKS file with the signing keys (read again hourly and on an unknown kid).") { $0.auth.jwksFile = $1 },
        text("AUTH_JWKS", "auth-jwks", "AUTH=jwt: the signing keys as inline JWKS JSON.", maxLength: 64 << 10) { $0.auth.jwks = $1 },
        text("AUTH_JWKS_URL", "auth-jwks-url", "AUTH=jwt: https URL of the JWKS (default for a Cognito issuer: <issuer>/.well-known/jwks.json).") { $0.auth.jwksURL = $1 },
        timeout("AUTH_LEEWAY", "auth-leeway", "AUTH=jwt/alb: clock skew allowed on exp, nbf, iat (default 30s).", allowZero: true) { $0.auth.leeway = $1 },
        text("AUTH_OWNER_CLAIM", "auth-owner-claim", "AUTH=jwt: the string claim naming a todo's owner (default sub).") { $0.auth.ownerClaim = $1 },
        text("AUTH_ALB_ARN", "auth-alb-arn", "AUTH=alb: the load balancer's ARN, which must have signed x-amzn-oidc-data.") { $0.auth.albARN = $1 },
        text("AUTH_ALB_KEYS_DIR", "auth-alb-keys-dir", "AUTH=alb: a directory of PEM public keys named by kid (instead of fetching them).") { $0.auth.albKeysDirectory = $1 },
        text("AUTH_ALB_KEYS_URL", "auth-alb-keys-url", "AUTH=alb: where the keys are fetched, <url>/<kid> (default https://public-keys.auth.elb.<AWS_REGION>.amazonaws.com).") { c, v in
            c.auth.albKeysURL = v.hasSuffix("/") ? String(v.dropLast()) : v
        },
        Setting(environment: "LOG_LEVEL", flag: "log-level", help: "trace, debug, info, warn, error or critical (default info).") { c, v in
            let level = v.lowercased()
            guard ["trace", "debug", "info", "warn", "warning", "error", "critical"].contains(level) else { return false }
            c.logLevel = level
            return true
        },
    ]

    /// A non-empty printable value (no control characters), at most `maxLength` bytes.
    private static func text(_ environment: String, _ flag: String, _ help: String, maxLength: Int = 2048,
                             _ set: @escaping @Sendable (inout ServiceConfiguration, String) -> Void) -> Setting {
        Setting(environment: environment, flag: flag, help: help) { c, v in
            guard !v.isEmpty, v.utf8.count <= maxLength, v.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x7F || $0 == 0x09 || $0 == 0x0A }) else { return false }
            set(&c, v)
            return true
        }
    }

    /// `N/window` or `off`.
    private static func rateLimit(_ environment: String, _ flag: String, _ help: String,
                                  _ set: @escaping @Sendable (inout ServiceConfiguration, RateLimitPolicy?) -> Void) -> Setting {
        Setting(environment: environment, flag: flag, help: help) { c, v in
            if v.lowercased() == "off" { set(&c, nil); return true }
            guard let policy = RateLimitPolicy(parsing: v) else { return false }
            set(&c, policy)
            return true
        }
    }

    private static func integer(_ environment: String, _ flag: String, _ range: ClosedRange<Int>, _ help: String,
                                _ set: @escaping @Sendable (inout ServiceConfiguration, Int) -> Void) -> Setting {
        Setting(environment: environment, flag: flag, help: help) { c, v in
            guard let n = Int(v), range.contains(n) else { return false }
            set(&c, n)
            return true
        }
    }

    private static func timeout(_ environment: String, _ flag: String, _ help: String, allowZero: Bool = false,
                                _ set: @escaping @Sendable (inout ServiceConfiguration, TimeSpan) -> Void) -> Setting {
        Setting(environment: environment, flag: flag, help: help + " Units: ms, s, m, h.") { c, v in
            guard let span = TimeSpan(parsing: v), span.nanoseconds > 0 || (allowZero && span.nanoseconds == 0) else { return false }
            set(&c, span)
            return true
        }
    }

    /// A flag (`flag name → value`) wins over its variable, which is then not read at all
    /// (`PORT=abc todo-api --port 0` serves on a free port). `only`: the settings a command uses
    /// (`migrate` does not read `PORT`, so a bad one must not stop it); nil for all.
    public static func resolve(environment: [String: String], flags: [String: String],
                               only: ((Setting) -> Bool)? = nil) throws(ConfigurationError) -> ServiceConfiguration {
        var configuration = ServiceConfiguration()
        for setting in settings where only?(setting) ?? true {
            if let value = flags[setting.flag] {
                guard setting.apply(&configuration, value) else {
                    throw ConfigurationError(setting: "--\(setting.flag)", value: value, help: setting.help)
                }
            } else if let value = environment[setting.environment] {
                guard setting.apply(&configuration, value) else {
                    throw ConfigurationError(setting: setting.environment, value: value, help: setting.help)
                }
            }
        }
        if configuration.databaseCredentials.secretId != nil && configuration.databaseCredentials.iamAuthentication {
            throw ConfigurationError(setting: "DB_IAM_AUTH", value: "true",
                                     help: "and DB_SECRET_ID are two ways to get the credentials: choose one.")
        }
        if configuration.pool.minConnections > configuration.pool.maxConnections {
            throw ConfigurationError(setting: "DB_POOL_MIN", value: String(configuration.pool.minConnections),
                                     help: "must not exceed DB_POOL_MAX (\(configuration.pool.maxConnections)).")
        }
        // One body limit: the parser answers 413 above it, and the request filter inspects every
        // byte it lets through (its own size rule can then never see a larger body).
        configuration.security.waf.maxBodyBytes = configuration.http.limits.maxBodyBytes
        return configuration
    }

    /// The database endpoints from the environment: `DATABASE_URL`, then libpq's `PG*` variables,
    /// then `DB_SECRET`; `DATABASE_READ_URL` optionally for reads. Nil when none is configured.
    public func databaseSettings(environment: [String: String]) throws(ConfigurationError)
        -> (writer: PostgresConnectionSettings, reader: PostgresConnectionSettings?)? {
        let configured = environment["DATABASE_URL"] != nil || environment["DB_SECRET"] != nil || databaseCredentials.secretId != nil
            || environment.keys.contains { $0.hasPrefix("PG") && ["PGHOST", "PGHOSTADDR", "PGDATABASE", "PGUSER", "PGPORT", "PGSERVICE"].contains($0) }
        guard configured else { return nil }
        do {
            let writer = try PostgresConnectionSettings.resolve(
                url: environment["DATABASE_URL"], environment: environment,
                statementTimeoutMilliseconds: statementTimeout.milliseconds, connectTimeoutMilliseconds: connectTimeout.milliseconds)
            let reader = try environment["DATABASE_READ_URL"].map { url throws(PostgresConfigurationError) in
                try PostgresConnectionSettings.resolve(
                    url: url, environment: environment,
                    statementTimeoutMilliseconds: statementTimeout.milliseconds, connectTimeoutMilliseconds: connectTimeout.milliseconds)
            }
            return (writer, reader)
        } catch {
            let setting = error.message.hasPrefix("DB_SECRET") ? "DB_SECRET" : "DATABASE_URL"
            throw ConfigurationError(setting: setting, value: "(hidden)", help: error.message)
        }
    }
}

public struct ConfigurationError: Error, CustomStringConvertible {
    public let setting: String
    public let value: String
    public let help: String

    public init(setting: String, value: String, help: String) {
        self.setting = setting
        self.value = value
        self.help = help
    }

    public var description: String {
        "invalid value '\(value)' for \(setting): \(help)"
    }
}
