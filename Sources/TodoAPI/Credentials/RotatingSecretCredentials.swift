import AWS
import Logging
import Net
import Postgres
import Synchronization

/// Database credentials read from Secrets Manager by the service itself (`DB_SECRET_ID`): at
/// start, every `DB_SECRET_REFRESH`, and when PostgreSQL refuses the password (at most once per
/// 10 s, `RefreshPolicy`). New connections take the latest values; open ones keep theirs.
/// The secret's fields replace the keywords the first read filled (`applySecret`), so a URL's own
/// user or password still wins.
public final class RotatingSecretCredentials: PostgresCredentialSource {
    public let secretId: String
    private let client: SecretsManagerClient
    private let aws: AWSCredentialProvider
    private let logger: Logger
    private let interval: TimeSpan

    private struct Current {
        var fields: [String: String]
        var versionId: String?
    }

    private let current: Mutex<Current>
    private let refresher: Mutex<BackgroundRefresher?> = Mutex(nil)
    private let onChange: Mutex<(@Sendable () -> Void)?> = Mutex(nil)

    /// Reads the secret once (blocking; at start-up, before the service listens) and starts the
    /// refreshes. Returns the source and the secret's JSON, which the settings resolve as DB_SECRET.
    public static func start(secretId: String, client: SecretsManagerClient, aws: AWSCredentialProvider,
                             interval: TimeSpan, logger: Logger = Logger(label: "credentials")) throws(AWSError) -> (RotatingSecretCredentials, String) {
        let (value, fields) = try read(secretId: secretId, client: client, aws: aws)
        let source = RotatingSecretCredentials(secretId: secretId, client: client, aws: aws, interval: interval, logger: logger,
                                               current: Current(fields: fields, versionId: value.versionId))
        logger.info("database secret read", metadata: ["secretId": "\(secretId)", "versionId": "\(value.versionId ?? "none")",
                                                       "user": "\(fields["user"] ?? "none")"])
        source.startRefreshing()
        return (source, value.secretString)
    }

    /// One GetSecretValue, parsed as DB_SECRET is.
    private static func read(secretId: String, client: SecretsManagerClient, aws: AWSCredentialProvider)
        throws(AWSError) -> (SecretsManagerClient.SecretValue, [String: String]) {
        guard let credentials = aws.current() else {
            aws.refreshSoon()
            throw AWSError(code: "NoAWSCredentials", message: "no valid AWS credentials to sign GetSecretValue with")
        }
        let value: SecretsManagerClient.SecretValue
        do {
            value = try client.getSecretValue(secretId: secretId, credentials: credentials)
        } catch {
            // The keys themselves were refused (expired or revoked session): fetch new ones now
            // rather than at their scheduled refresh.
            if ["ExpiredTokenException", "UnrecognizedClientException", "InvalidClientTokenId", "InvalidSignatureException",
                "AccessDeniedException"].contains(error.code) {
                aws.refreshSoon()
            }
            throw error
        }
        do {
            return (value, try PostgresConnectionSettings.parseSecret(value.secretString))
        } catch {
            throw AWSError(code: "MalformedSecret", message: "secret \(secretId): \(error.message)", isPermanent: true)
        }
    }

    private init(secretId: String, client: SecretsManagerClient, aws: AWSCredentialProvider, interval: TimeSpan, logger: Logger,
                 current: Current) {
        self.secretId = secretId
        self.client = client
        self.aws = aws
        self.interval = interval
        self.logger = logger
        self.current = Mutex(current)
    }

    private func startRefreshing() {
        let refresher = BackgroundRefresher(label: "todo-api.db-secret") { [self] reason, failureIsFirst in
            refresh(reason: reason, logFailure: failureIsFirst())
        }
        self.refresher.withLock { $0 = refresher }
        refresher.started(.success(next: interval))
    }

    /// Called when new credentials are in (the service points it at the database's pools).
    public func whenChanged(_ action: @escaping @Sendable () -> Void) {
        onChange.withLock { $0 = action }
    }

    public func prepare(_ settings: inout PostgresConnectionSettings) -> PostgresError? {
        let fields = current.withLock { $0.fields }
        settings.applySecret(fields)
        return nil
    }

    public func rejected(sqlState: String) {
        refresher.withLock { $0 }?.demand()
    }

    private func refresh(reason: RefreshPolicy.Reason, logFailure: Bool) -> BackgroundRefresher.Outcome {
        do {
            let (value, fields) = try Self.read(secretId: secretId, client: client, aws: aws)
            let changed = current.withLock { current -> Bool in
                let changed = current.fields != fields
                current = Current(fields: fields, versionId: value.versionId)
                return changed
            }
            if changed {
                logger.info("database credentials refreshed", metadata: [
                    "reason": "\(reason.rawValue)", "secretId": "\(secretId)", "versionId": "\(value.versionId ?? "none")",
                    "user": "\(fields["user"] ?? "none")",
                ])
                onChange.withLock { $0 }?()
            } else if reason == .rejected {
                logger.warning("database secret unchanged after PostgreSQL refused its password", metadata: [
                    "secretId": "\(secretId)", "versionId": "\(value.versionId ?? "none")",
                ])
            }
            return .success(next: interval)
        } catch {
            if logFailure {
                logger.warning("database secret refresh failed: new connections keep the current credentials", metadata: [
                    "reason": "\(reason.rawValue)", "secretId": "\(secretId)", "error": "\(error)",
                ])
            }
            return .failure(latest: nil)
        }
    }
}
