import Logging
import Postgres
import TodoAPI

/// `todo-api migrate`: apply pending migrations and exit (0 on success, 1 on failure, 2 on bad
/// configuration). Safe to run from many tasks at once (advisory lock).
struct MigrateCommand {
    /// `--migrations-dir`, `--log-level` (ServiceCommandLine.options(for: .migrate)).
    let options: [String: String]

    func run() throws {
        let environment = ServeCommand.environment()
        // Only what migrating uses: the database's settings and the log's (a bad PORT is not its business).
        let configuration = try ServiceConfiguration.resolve(environment: environment, flags: options) { setting in
            setting.environment.hasPrefix("DB_") || ["MIGRATIONS_DIR", "LOG_LEVEL", "LOG_FORMAT", "SERVICE_NAME"].contains(setting.environment)
        }
        let logging = ServeCommand.bootstrapLogging(configuration)
        defer { logging.sink.flush() }
        guard let settings = try DatabaseCredentialSetup.resolve(configuration: configuration, environment: environment) else {
            throw ConfigurationError(setting: "DATABASE_URL", value: "", help: "no database configured (DATABASE_URL, PG*, DB_SECRET or DB_SECRET_ID).")
        }
        try Self.migrate(settings.writerWithCredentials(), directory: configuration.migrationsDirectory, logger: Logger(label: "migrations"))
    }

    /// Runs the migrations on the calling thread (never a loop); failures become `StartupError`.
    static func migrate(_ settings: PostgresConnectionSettings, directory: String, logger: Logger) throws {
        do {
            let migrator = Migrator(migrations: try Migrator.load(directory: directory))
            let connection = try BlockingPostgresConnection(settings)
            let applied = try migrator.migrate(connection, logger: logger)
            logger.info("migrations up to date", metadata: ["applied": "\(applied.count)", "known": "\(migrator.migrations.count)"])
        } catch {
            logger.error("migration failed", metadata: ["error": "\(error)"])
            throw StartupError(description: "migration failed: \(error)")
        }
    }
}
