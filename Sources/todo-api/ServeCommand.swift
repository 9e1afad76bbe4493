import ArgumentParser
import Dispatch
import CLinux
import Glibc
import HTTP
import Logging
import Net
import Observability
import Postgres
import Security
import TodoAPI

/// `todo-api serve`: run the HTTP service until SIGTERM/SIGINT, then drain.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the API (the default command). Every flag also reads an env var; flags win.",
        discussion: ServiceConfiguration.settings.map { "  \($0.environment) / --\($0.flag): \($0.help)" }.joined(separator: "\n")
    )

    @Option(help: "HOST") var host: String?
    @Option(help: "PORT") var port: String?
    @Option(help: "THREADS") var threads: String?
    @Option(name: .customLong("max-body-size"), help: "MAX_BODY_SIZE") var maxBodySize: String?
    @Option(name: .customLong("max-connections"), help: "MAX_CONNECTIONS") var maxConnections: String?
    @Option(name: .customLong("header-timeout"), help: "HEADER_TIMEOUT") var headerTimeout: String?
    @Option(name: .customLong("body-timeout"), help: "BODY_TIMEOUT") var bodyTimeout: String?
    @Option(name: .customLong("write-timeout"), help: "WRITE_TIMEOUT") var writeTimeout: String?
    @Option(name: .customLong("idle-timeout"), help: "IDLE_TIMEOUT") var idleTimeout: String?
    @Option(name: .customLong("drain-timeout"), help: "DRAIN_TIMEOUT") var drainTimeout: String?
    @Option(name: .customLong("log-level"), help: "LOG_LEVEL") var logLevel: String?
    @Option(name: .customLong("log-format"), help: "LOG_FORMAT") var logFormat: String?
    @Option(name: .customLong("service-name"), help: "SERVICE_NAME") var serviceName: String?
    @Option(name: .customLong("metrics-port"), help: "METRICS_PORT") var metricsPort: String?
    @Option(name: .customLong("db-pool-min"), help: "DB_POOL_MIN") var dbPoolMin: String?
    @Option(name: .customLong("db-pool-max"), help: "DB_POOL_MAX") var dbPoolMax: String?
    @Option(name: .customLong("db-acquire-timeout"), help: "DB_ACQUIRE_TIMEOUT") var dbAcquireTimeout: String?
    @Option(name: .customLong("db-statement-timeout"), help: "DB_STATEMENT_TIMEOUT") var dbStatementTimeout: String?
    @Option(name: .customLong("db-connect-timeout"), help: "DB_CONNECT_TIMEOUT") var dbConnectTimeout: String?
    @Option(name: .customLong("db-max-lifetime"), help: "DB_MAX_LIFETIME") var dbMaxLifetime: String?
    @Option(name: .customLong("db-idle-timeout"), help: "DB_IDLE_TIMEOUT") var dbIdleTimeout: String?
    @Option(name: .customLong("migrations-dir"), help: "MIGRATIONS_DIR") var migrationsDir: String?
    @Option(name: .customLong("trusted-proxies"), help: "TRUSTED_PROXIES") var trustedProxies: String?
    @Option(name: .customLong("rate-limit"), help: "RATE_LIMIT") var rateLimit: String?
    @Option(name: .customLong("rate-limit-burst"), help: "RATE_LIMIT_BURST") var rateLimitBurst: String?
    @Option(name: .customLong("rate-limit-writes"), help: "RATE_LIMIT_WRITES") var rateLimitWrites: String?
    @Option(name: .customLong("rate-limit-max-clients"), help: "RATE_LIMIT_MAX_CLIENTS") var rateLimitMaxClients: String?
    @Option(name: .customLong("waf"), help: "WAF") var waf: String?
    @Option(name: .customLong("waf-rules-file"), help: "WAF_RULES_FILE") var wafRulesFile: String?
    @Option(name: .customLong("waf-rules"), help: "WAF_RULES") var wafRules: String?
    @Option(name: .customLong("waf-allow-ips"), help: "WAF_ALLOW_IPS") var wafAllowIPs: String?
    @Option(name: .customLong("waf-deny-ips"), help: "WAF_DENY_IPS") var wafDenyIPs: String?
    @Flag(name: .customLong("migrate"), help: "MIGRATE_ON_START: apply pending migrations before listening.") var migrate = false

    var flags: [String: String] {
        let pairs: [(String, String?)] = [
            ("host", host), ("port", port), ("threads", threads), ("max-body-size", maxBodySize),
            ("max-connections", maxConnections), ("header-timeout", headerTimeout), ("body-timeout", bodyTimeout),
            ("write-timeout", writeTimeout), ("idle-timeout", idleTimeout), ("drain-timeout", drainTimeout),
            ("log-level", logLevel), ("log-format", logFormat), ("service-name", serviceName), ("metrics-port", metricsPort),
            ("db-pool-min", dbPoolMin), ("db-pool-max", dbPoolMax),
            ("db-acquire-timeout", dbAcquireTimeout), ("db-statement-timeout", dbStatementTimeout),
            ("db-connect-timeout", dbConnectTimeout), ("db-max-lifetime", dbMaxLifetime), ("db-idle-timeout", dbIdleTimeout),
            ("migrations-dir", migrationsDir), ("migrate", migrate ? "true" : nil),
            ("trusted-proxies", trustedProxies), ("rate-limit", rateLimit), ("rate-limit-burst", rateLimitBurst),
            ("rate-limit-writes", rateLimitWrites), ("rate-limit-max-clients", rateLimitMaxClients), ("waf", waf),
            ("waf-rules-file", wafRulesFile), ("waf-rules", wafRules), ("waf-allow-ips", wafAllowIPs), ("waf-deny-ips", wafDenyIPs),
        ]
        return Dictionary(uniqueKeysWithValues: pairs.compactMap { name, value in value.map { (name, $0) } })
    }

    func run() throws {
        let environment = Self.environment()
        let configuration = try ServiceConfiguration.resolve(environment: environment, flags: flags)
        let databaseSettings = try configuration.databaseSettings(environment: environment)
        // Signals are taken synchronously by the main thread (sigtimedwait below); blocked before
        // any other thread exists (the log writer, the loops) so that every thread inherits the
        // mask and none is interrupted or killed by them.
        signal(SIGPIPE, SIG_IGN)
        _ = clinux_block_signal(SIGTERM)
        _ = clinux_block_signal(SIGINT)
        let logging = Self.bootstrapLogging(configuration)
        let logger = Logger(label: "server")
        var http = configuration.http
        http.accessLog = AccessLog(sink: logging.sink, level: logging.level, service: configuration.serviceName, format: logging.format)
        http.recordMetrics = configuration.metricsPort != 0
        let security = SecurityFilter(configuration: configuration.security)
        http.requestFilter = security.requestFilter
        http.responseHeaders = security.responseHeaders

        if configuration.migrateOnStart {
            guard let databaseSettings else {
                throw ConfigurationError(setting: "MIGRATE_ON_START", value: "true", help: "needs a database (DATABASE_URL, PG* or DB_SECRET).")
            }
            try MigrateCommand.migrate(databaseSettings.writer, directory: configuration.migrationsDirectory, logger: Logger(label: "migrations"))
        }

        Self.raiseOpenFileLimit()

        let group: EventLoopGroup
        let server: HTTPServer
        let database: PostgresDatabase?
        var adminServer: HTTPServer?
        var metricsPort: Int?
        let port: Int
        do {
            group = try EventLoopGroup(count: configuration.threads)
            database = databaseSettings.map {
                PostgresDatabase(loops: group.loops, writer: $0.writer, reader: $0.reader,
                                 configuration: configuration.pool, logger: Logger(label: "database"))
            }
            server = HTTPServer(configuration: http, group: group,
                                router: Application.makeRouter(database: database, openAPI: Self.openAPIDocument(environment, logger)),
                                logger: Logger(label: "http"))
            port = try server.start()
            if configuration.metricsPort != 0 {
                var admin = HTTPServerConfiguration()
                admin.host = configuration.http.host
                admin.port = configuration.metricsPort
                admin.maxConnections = 64
                adminServer = HTTPServer(configuration: admin, group: group,
                                         router: MetricsRoutes.makeRouter(server: server, sink: logging.sink, database: database, security: security),
                                         logger: Logger(label: "admin"))
                metricsPort = try adminServer?.start()
            }
            try group.start()
            database?.start()
        } catch {
            throw StartupError(description: "cannot start: \(error)")
        }
        if databaseSettings == nil {
            logger.warning("no database configured (DATABASE_URL, PG* or DB_SECRET): only /health is served")
        }
        logger.info("listening", metadata: [
            "host": "\(configuration.http.host)", "port": "\(port)", "threads": "\(configuration.threads)",
            "metricsPort": "\(metricsPort.map(String.init) ?? "off")",
            "database": "\(databaseSettings?.writer.redactedDescription ?? "none")",
            "readDatabase": "\(databaseSettings?.reader?.redactedDescription ?? "none")",
        ])

        let first = Self.waitForSignal(timeout: nil)!
        logger.info("draining", metadata: ["signal": "\(Self.signalName(first))", "drainTimeout": "\(configuration.drainTimeout)"])
        server.beginDrain()
        adminServer?.beginDrain()
        var second: Int32?
        let drained = server.waitUntilDrained(timeout: configuration.drainTimeout) {
            second = Self.waitForSignal(timeout: TimeSpan(nanoseconds: 0))
            return second != nil
        }
        if let second {
            logger.warning("second signal: exiting at once", metadata: ["signal": "\(Self.signalName(second))"])
            logging.sink.flush(timeout: .now() + .seconds(1))
            Glibc.exit(128 + second)
        }
        if !drained {
            logger.warning("drain timeout: closing remaining connections", metadata: ["open": "\(server.openConnections)"])
            server.closeAll()
            adminServer?.closeAll()
            _ = server.waitUntilDrained(timeout: .seconds(1))
        }
        // HTTP first (requests in flight may still query), then the database connections.
        database?.shutdown()
        usleep(50_000)
        adminServer?.closeAll()
        group.shutdown()
        logger.info("stopped")
        logging.sink.flush()
    }

    /// One sink (a writer thread behind a bounded queue) for every log line of the process.
    static func bootstrapLogging(_ configuration: ServiceConfiguration) -> (sink: LogSink, level: Logger.Level, format: LogFormat) {
        let level = StructuredLogHandler.level(named: configuration.logLevel) ?? .info
        let format = LogFormat(rawValue: configuration.logFormat) ?? .json
        let service = configuration.serviceName
        let sink = LogSink { dropped in
            LogLine.render(format: format, timestamp: Timestamp.nowMilliseconds(), level: .warning, service: service,
                           component: "logging", message: "log lines dropped: stdout did not keep up",
                           metadata: ["dropped": .stringConvertible(dropped)])
        }
        LoggingSystem.bootstrap { StructuredLogHandler(component: $0, level: level, service: service, format: format, sink: sink) }
        return (sink, level, format)
    }

    /// The OpenAPI document to serve: `OPENAPI_FILE`, else docs/openapi.yaml under the working
    /// directory (where the image and the scripts run). Missing: not served, and said so.
    static func openAPIDocument(_ environment: [String: String], _ logger: Logger) -> [UInt8]? {
        let path = environment["OPENAPI_FILE"] ?? "docs/openapi.yaml"
        guard let bytes = FileBytes.read(path) else {
            logger.warning("OpenAPI document not found: /openapi.yaml is not served", metadata: ["path": "\(path)"])
            return nil
        }
        return bytes
    }

    /// Waits for SIGTERM or SIGINT; `timeout: 0` polls.
    static func waitForSignal(timeout: TimeSpan?) -> Int32? {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        while true {
            let received: Int32
            if let timeout {
                var ts = timespec(tv_sec: Int(timeout.nanoseconds / 1_000_000_000), tv_nsec: Int(timeout.nanoseconds % 1_000_000_000))
                received = sigtimedwait(&set, nil, &ts)
            } else {
                var signo: Int32 = 0
                received = sigwait(&set, &signo) == 0 ? signo : -1
            }
            if received > 0 { return received }
            if timeout != nil && errno == EAGAIN { return nil }
        }
    }

    static func signalName(_ signo: Int32) -> String {
        signo == SIGTERM ? "SIGTERM" : signo == SIGINT ? "SIGINT" : "signal \(signo)"
    }

    /// Each connection is a descriptor: raise the soft limit to the hard one, as nginx's
    /// worker_rlimit_nofile does, so MAX_CONNECTIONS is not silently capped at 1024.
    static func raiseOpenFileLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }

    static func environment() -> [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }
}
