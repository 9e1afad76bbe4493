import Glibc
import Logging
import Net
import Postgres

/// The real PostgreSQL clusters that `scripts/test` starts (see scripts/pg-local). A missing one is
/// a failure that says how to get it, never a silent skip.
///
/// Tests create databases of their own and never drop them: the clusters are deleted when the run
/// ends. `DROP DATABASE` waits until every backend of the cluster has acknowledged a
/// ProcSignalBarrier; under the parallel suite that wait sometimes lasted past the admin
/// connection's 5 s statement timeout, and since tests dropped in a synchronous `deinit`, two of
/// them held both of Swift's cooperative threads (2 cores) and stalled every other test for up to
/// a minute (seen with gdb and pg_stat_activity: `DROP DATABASE … WITH (FORCE)` waiting on
/// `IPC/ProcSignalBarrier`).
public enum TestDatabase {
    public static func environment(_ name: String) throws -> String {
        guard let value = getenv(name).map({ String(cString: $0) }), !value.isEmpty else {
            throw TestSetupError.missing("\(name) is not set: run the tests through scripts/test, which starts PostgreSQL")
        }
        return value
    }

    /// The stable cluster: the `todo` role over TCP with its URL-special password.
    public static func url() throws -> String { try environment("TEST_DATABASE_URL") }
    /// Superuser over the Unix socket of the stable cluster.
    public static func adminURL() throws -> String { try environment("TEST_PG_ADMIN_URL") }

    public static func settings(_ url: String? = nil, applicationName: String? = nil, statementTimeout: Int64 = 5000) throws -> PostgresConnectionSettings {
        var settings = try PostgresConnectionSettings.resolve(url: url ?? self.url(), environment: [:],
                                                              statementTimeoutMilliseconds: statementTimeout)
        if let applicationName { settings["application_name"] = applicationName }
        return settings
    }

    public static func admin(_ url: String? = nil) throws -> BlockingPostgresConnection {
        try BlockingPostgresConnection(PostgresConnectionSettings.resolve(url: url ?? adminURL(), environment: [:]))
    }

    public static func uniqueName(_ prefix: String) -> String {
        "\(prefix)_\(getpid())_\(UInt32.random(in: 0...UInt32.max))"
    }
}

public enum TestSetupError: Error { case missing(String) }

/// One event loop and a database on it, torn down at the end.
public final class LoopDatabase: Sendable {
    public let group: EventLoopGroup
    public let database: PostgresDatabase
    public var loop: EventLoop { group.loops[0] }

    public init(settings: PostgresConnectionSettings, reader: PostgresConnectionSettings? = nil,
                credentials: PostgresCredentialSource? = nil,
                configure: (inout PostgresPoolConfiguration) -> Void = { _ in }) throws {
        var configuration = PostgresPoolConfiguration()
        configuration.minConnections = 1
        configuration.maxConnections = 2
        configure(&configuration)
        group = try EventLoopGroup(count: 1)
        database = PostgresDatabase(loops: group.loops, writer: settings, reader: reader,
                                    configuration: configuration, logger: Logger(label: "test"), credentials: credentials)
        try group.start()
        database.start()
    }

    /// Runs `body` as a task on the loop, as the HTTP server runs async handlers.
    public func run<T: Sendable>(_ body: @escaping @Sendable (PostgresDatabase) async throws -> T) async throws -> T {
        let database = self.database
        return try await Task(executorPreference: loop) { try await body(database) }.value
    }

    deinit {
        database.shutdown()
        usleep(20_000)
        group.shutdown()
    }
}

/// Retries `body` until it succeeds or `attempts` pass (for recovery after a fault; no timing asserted).
public func eventually<T>(attempts: Int = 100, pause: useconds_t = 100_000, _ body: () async throws -> T) async throws -> T {
    var lastError: Error?
    for _ in 0..<attempts {
        do { return try await body() } catch { lastError = error }
        usleep(pause)
    }
    throw lastError!
}
