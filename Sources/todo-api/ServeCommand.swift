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
struct ServeCommand {
    /// Flag name → value, one per `ServiceConfiguration.settings` entry given on the command line.
    let options: [String: String]

    func run() throws {
        let environment = Self.environment()
        let configuration = try ServiceConfiguration.resolve(environment: environment, flags: options)
        // Signals are taken synchronously by the main thread (sigtimedwait below); blocked before
        // any other thread exists (the log writer, the loops) so that every thread inherits the
        // mask and none is interrupted or killed by them.
        signal(SIGPIPE, SIG_IGN)
        _ = clinux_block_signal(SIGTERM)
        _ = clinux_block_signal(SIGINT)
        let logging = Self.bootstrapLogging(configuration)
        let logger = Logger(label: "server")
        // After the logging bootstrap (a secret read at start logs), before any listener.
        let databaseSettings = try DatabaseCredentialSetup.resolve(configuration: configuration, environment: environment)
        var http = configuration.http
        http.accessLog = AccessLog(sink: logging.sink, level: logging.level, service: configuration.serviceName, format: logging.format)
        http.recordMetrics = configuration.metricsPort != 0
        let security = SecurityFilter(configuration: configuration.security)
        http.requestFilter = security.requestFilter
        http.isExemptFromAddressLimit = { [security] peer in security.isTrustedProxy(peer) }
        http.responseHeaders = security.responseHeaders
        // Keys read before the listener opens: a token is never refused for want of them at start.
        let authentication = try AuthenticationSetup.make(configuration.auth, environment: environment).map {
            RouteAuthentication(authenticator: $0, isTrustedPeer: { [security] peer in security.isTrustedProxy(peer) })
        }

        if configuration.migrateOnStart {
            guard let databaseSettings else {
                throw ConfigurationError(setting: "MIGRATE_ON_START", value: "true", help: "needs a database (DATABASE_URL, PG*, DB_SECRET or DB_SECRET_ID).")
            }
            try MigrateCommand.migrate(databaseSettings.writerWithCredentials(), directory: configuration.migrationsDirectory, logger: Logger(label: "migrations"))
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
                                 configuration: configuration.pool, logger: Logger(label: "database"), credentials: $0.source)
            }
            if let database, let secret = databaseSettings?.rotatingSecret {
                secret.whenChanged { [database] in database.credentialsChanged() }
            }
            server = HTTPServer(configuration: http, group: group,
                                router: Application.makeRouter(database: database, openAPI: Self.openAPIDocument(environment, logger),
                                                               authentication: authentication),
                                logger: Logger(label: "http"))
            port = try server.start()
            if configuration.metricsPort != 0 {
                var admin = HTTPServerConfiguration()
                admin.host = configuration.http.host
                admin.port = configuration.metricsPort
                admin.maxConnections = 64
                adminServer = HTTPServer(configuration: admin, group: group,
                                         router: MetricsRoutes.makeRouter(server: server, sink: logging.sink, database: database, security: security,
                                                                          authentication: authentication),
                                         logger: Logger(label: "admin"))
                metricsPort = try adminServer?.start()
            }
            try group.start()
            database?.start()
        } catch {
            throw StartupError(description: "cannot start: \(error)")
        }
        if databaseSettings == nil {
            logger.warning("no database configured (DATABASE_URL, PG*, DB_SECRET or DB_SECRET_ID): only /health is served")
        }
        logger.info("listening", metadata: [
            "host": "\(configuration.http.host)", "port": "\(port)", "threads": "\(configuration.threads)",
            "metricsPort": "\(metricsPort.map(String.init) ?? "off")",
            "database": "\(databaseSettings?.writer.redactedDescription ?? "none")",
            "readDatabase": "\(databaseSettings?.reader?.redactedDescription ?? "none")",
            "libpq": "\(LinkedLibraries.libpq)", "openssl": "\(LinkedLibraries.openSSL)",
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
