import AWS
import Logging
import Postgres

/// At start-up: the database settings and, when the credentials rotate, their source.
/// `DB_SECRET_ID` is read here (blocking, before the service listens) and its JSON resolves like
/// an injected `DB_SECRET`; `DB_IAM_AUTH` checks the endpoints and the AWS credentials.
public enum DatabaseCredentialSetup {
    public struct Result: Sendable {
        public let writer: PostgresConnectionSettings
        public let reader: PostgresConnectionSettings?
        public let source: PostgresCredentialSource?
        /// Set when the source is a rotating secret: point it at the database once that exists.
        public let rotatingSecret: RotatingSecretCredentials?

        /// The writer's settings with the current credentials (for a one-off blocking connection:
        /// migrations). Throws when the source has none to give.
        public func writerWithCredentials() throws -> PostgresConnectionSettings {
            var settings = writer
            if let error = source?.prepare(&settings) { throw StartupDependencyError(description: error.message) }
            return settings
        }
    }

    /// Nil when no database is configured. Configuration problems throw `ConfigurationError`
    /// (exit 2); AWS refusing or unreachable throws `StartupDependencyError` (exit 1, as ECS
    /// fails a task whose secret it cannot inject).
    public static func resolve(configuration: ServiceConfiguration, environment: [String: String],
                               logger: Logger = Logger(label: "credentials")) throws -> Result? {
        let options = configuration.databaseCredentials
        guard options.secretId != nil || options.iamAuthentication else {
            return try configuration.databaseSettings(environment: environment).map { Result(writer: $0.writer, reader: $0.reader, source: nil, rotatingSecret: nil) }
        }
        let setting = options.secretId != nil ? "DB_SECRET_ID" : "DB_IAM_AUTH"
        let aws: AWSCredentialProvider
        do {
            guard let found = try AWSCredentialProvider.resolve(environment: environment) else {
                throw ConfigurationError(setting: setting, value: options.secretId ?? "true",
                                         help: "needs AWS credentials: the ECS task role (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, set by ECS), AWS_CONTAINER_CREDENTIALS_FULL_URI, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.")
            }
            aws = found
        } catch let error as AWSConfigurationError {
            throw ConfigurationError(setting: error.setting, value: "(hidden)", help: error.message)
        }
        try StartupRetry.run("AWS credentials", logger: logger, isPermanent: \AWSError.isPermanent) { () throws(AWSError) in try aws.start() }

        if let secretId = options.secretId {
            let client: SecretsManagerClient
            do { client = try SecretsManagerClient.resolve(secretId: secretId, environment: environment) } catch {
                throw ConfigurationError(setting: error.setting, value: "(hidden)", help: error.message)
            }
            let (source, json) = try StartupRetry.run("the database secret \(secretId)", logger: logger,
                                                      isPermanent: \AWSError.isPermanent) { () throws(AWSError) in
                try RotatingSecretCredentials.start(secretId: secretId, client: client, aws: aws, interval: options.secretRefresh, logger: logger)
            }
            var withSecret = environment
            withSecret["DB_SECRET"] = json
            guard let settings = try configuration.databaseSettings(environment: withSecret) else { return nil }
            return Result(writer: settings.writer, reader: settings.reader, source: source, rotatingSecret: source)
        }

        guard let settings = try configuration.databaseSettings(environment: environment) else {
            throw ConfigurationError(setting: "DB_IAM_AUTH", value: "true", help: "needs a database (DATABASE_URL or PG*).")
        }
        let source = try IAMTokenCredentials.make(endpoints: [settings.writer] + (settings.reader.map { [$0] } ?? []),
                                                  environment: environment, aws: aws)
        logger.info("database IAM authentication", metadata: ["region": "\(source.region)"])
        let sslmode = settings.writer["sslmode"] ?? environment["PGSSLMODE"] ?? ""
        if sslmode == "require" {
            // The token is a password valid 15 minutes; require encrypts but does not check who
            // the server is, so whoever sits on the path could take it.
            logger.warning("DB_IAM_AUTH with sslmode=require: the server's certificate is not verified; use verify-full with the RDS CA bundle (PGSSLROOTCERT)")
        }
        return Result(writer: settings.writer, reader: settings.reader, source: source, rotatingSecret: nil)
    }
}
