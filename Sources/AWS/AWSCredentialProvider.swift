import HTTPClient
import Logging
import Net
import Observability
import Synchronization

/// The service's AWS credentials, found as the AWS SDKs find them on ECS: the environment's
/// access keys first, then the container credentials endpoint (the task role). Temporary
/// credentials are refreshed `refreshAhead` before they expire, on a queue of their own; a failed
/// refresh keeps the old ones while they are valid, retries with backoff, and is logged once.
/// `current()` never blocks: the loops read it as a connection opens.
public final class AWSCredentialProvider: Sendable {
    public enum Source: Sendable {
        case environment(AWSCredentials)
        case container(ContainerCredentialsEndpoint)
    }

    /// Five minutes ahead of expiry: ECS's credentials last hours and its agent renews them well
    /// before; five minutes leaves room for several retries if the endpoint hiccups.
    public static let refreshAhead: Int64 = 300
    /// Never refresh more often than this on success (credentials the endpoint hands out already
    /// inside the margin would otherwise be fetched in a loop).
    static let minimumInterval = TimeSpan.seconds(5)

    public let source: Source
    private let client: HTTPClient
    private let logger: Logger
    private let credentials: Mutex<AWSCredentials?>
    private let refresher: Mutex<BackgroundRefresher?> = Mutex(nil)

    public init(source: Source, client: HTTPClient = HTTPClient(), logger: Logger = Logger(label: "credentials")) {
        self.source = source
        self.client = client
        self.logger = logger
        if case .environment(let fixed) = source {
            credentials = Mutex(fixed)
        } else {
            credentials = Mutex(nil)
        }
    }

    /// From the environment, in the SDKs' order; nil when no source is configured.
    public static func resolve(environment: [String: String]) throws(AWSConfigurationError) -> AWSCredentialProvider? {
        let keyId = environment["AWS_ACCESS_KEY_ID"] ?? ""
        let secret = environment["AWS_SECRET_ACCESS_KEY"] ?? ""
        if !keyId.isEmpty || !secret.isEmpty {
            guard !keyId.isEmpty, !secret.isEmpty else {
                throw AWSConfigurationError(setting: keyId.isEmpty ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                                            message: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together")
            }
            let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
            return AWSCredentialProvider(source: .environment(AWSCredentials(accessKeyId: keyId, secretAccessKey: secret, sessionToken: token)))
        }
        if let endpoint = try ContainerCredentialsEndpoint.resolve(environment: environment) {
            return AWSCredentialProvider(source: .container(endpoint))
        }
        return nil
    }

    /// Fetches the first credentials (blocking; at start-up, before the service listens) and
    /// starts refreshing them. Environment credentials need neither.
    public func start() throws(AWSError) {
        guard case .container(let endpoint) = source else { return }
        let fetched = try endpoint.fetch(client: client)
        credentials.withLock { $0 = fetched }
        logger.info("aws credentials loaded", metadata: metadata(fetched))
        // The refreshes begin once there is something to refresh (a failed start is retried by
        // the caller, which calls start again).
        let refresher = BackgroundRefresher(label: "todo-api.aws-credentials") { [self] _, failureIsFirst in
            refresh(endpoint, logFailure: failureIsFirst())
        }
        self.refresher.withLock { $0 = refresher }
        refresher.started(.success(next: nextRefresh(fetched)))
    }

    /// The credentials now, if valid; nil before the first fetch or once they expired.
    public func current() -> AWSCredentials? {
        let now = AWSTime.now()
        return credentials.withLock { $0 }.flatMap { $0.isValid(at: now) ? $0 : nil }
    }

    /// A signature was refused: fetch new credentials soon (at most once per 10 s).
    public func refreshSoon() {
        refresher.withLock { $0 }?.demand()
    }

    private func refresh(_ endpoint: ContainerCredentialsEndpoint, logFailure: Bool) -> BackgroundRefresher.Outcome {
        do {
            let fetched = try endpoint.fetch(client: client)
            credentials.withLock { $0 = fetched }
            logger.info("aws credentials refreshed", metadata: metadata(fetched))
            return .success(next: nextRefresh(fetched))
        } catch {
            let old = credentials.withLock { $0 }
            if logFailure {
                logger.warning("aws credentials refresh failed: keeping the current ones while they are valid", metadata: [
                    "source": "container", "error": "\(error)",
                    "expiration": "\(old?.expiration.map { Self.rfc3339($0) } ?? "none")",
                ])
            }
            // Retry no later than the old credentials' last minute.
            let latest = old?.expiration.map { MonotonicTime.now() + .seconds(max(0, $0 - AWSTime.now() - 60)) }
            return .failure(latest: latest)
        }
    }

    private func nextRefresh(_ credentials: AWSCredentials) -> TimeSpan? {
        guard let expiration = credentials.expiration else { return nil }
        let seconds = expiration - Self.refreshAhead - AWSTime.now()
        return max(Self.minimumInterval, .seconds(seconds))
    }

    private func metadata(_ credentials: AWSCredentials) -> Logger.Metadata {
        ["source": "container", "expiration": "\(credentials.expiration.map { Self.rfc3339($0) } ?? "none")"]
    }

    static func rfc3339(_ seconds: Int64) -> String {
        Timestamp.rfc3339(milliseconds: seconds * 1000)
    }
}
