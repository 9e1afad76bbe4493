import AWS
import Logging
import Net
import Postgres
import Synchronization

/// RDS IAM database authentication (`DB_IAM_AUTH`): every new connection's password is an auth
/// token for its endpoint's host, port and user, signed with the service's AWS credentials.
/// A token is valid 15 minutes; one is reused for at most 10 (signing per connect is cheap, but a
/// busy pool need not sign on every connect). Signing is HMAC work only, so `prepare` runs on the
/// loop; the AWS credentials it reads are refreshed elsewhere (`AWSCredentialProvider`).
public final class IAMTokenCredentials: PostgresCredentialSource {
    /// What a token is signed for.
    public struct Target: Hashable, Sendable {
        public let host: String
        public let port: Int
        public let user: String
    }

    public let region: String
    private let aws: AWSCredentialProvider
    /// libpq's variables, for what the settings leave to them (PGHOST, PGPORT, PGUSER).
    private let environment: [String: String]
    /// Unix seconds; injected so tests can generate the token for a frozen clock.
    private let clock: @Sendable () -> Int64
    static let reuseSeconds: Int64 = 600

    private struct Cached {
        var accessKeyId: String
        var token: String
        var created: Int64
    }

    /// One entry per endpoint (the writer, the reader): two at most.
    private let cache: Mutex<[Target: Cached]> = Mutex([:])

    public init(region: String, aws: AWSCredentialProvider, environment: [String: String] = [:],
                clock: @escaping @Sendable () -> Int64 = { AWSTime.now() }) {
        self.region = region
        self.aws = aws
        self.environment = environment
        self.clock = clock
    }

    /// Checks every endpoint's settings at start-up (exit 2 for what IAM authentication cannot
    /// work with: no TLS, no host name, no user) and finds the region.
    public static func make(endpoints: [PostgresConnectionSettings], environment: [String: String],
                            aws: AWSCredentialProvider) throws(ConfigurationError) -> IAMTokenCredentials {
        var hostRegion: String?
        for settings in endpoints {
            let sslmode = settings["sslmode"] ?? environment["PGSSLMODE"] ?? "prefer"
            guard ["require", "verify-ca", "verify-full"].contains(sslmode) else {
                throw ConfigurationError(setting: "DB_IAM_AUTH", value: "true",
                                         help: "needs TLS to the database: set sslmode=require (or verify-ca, verify-full) in DATABASE_URL or PGSSLMODE, not \(sslmode). The token is a password.")
            }
            let target: Target
            switch Self.target(of: settings, environment: environment) {
            case .success(let found): target = found
            case .failure(let error): throw error
            }
            // <name>.<id>.<region>.rds.amazonaws.com
            let labels = target.host.split(separator: ".")
            if labels.count >= 5 && labels[labels.count - 3] == "rds" { hostRegion = hostRegion ?? String(labels[labels.count - 4]) }
        }
        guard let region = [environment["AWS_REGION"], environment["AWS_DEFAULT_REGION"], hostRegion].compactMap({ $0 }).first(where: { !$0.isEmpty }) else {
            throw ConfigurationError(setting: "AWS_REGION", value: "", help: "needed for DB_IAM_AUTH (the token is signed for a region).")
        }
        return IAMTokenCredentials(region: region, aws: aws, environment: environment)
    }

    /// The first host of the list, its port, and the user.
    static func target(of settings: PostgresConnectionSettings, environment: [String: String]) -> Result<Target, ConfigurationError> {
        guard let hosts = settings["host"] ?? environment["PGHOST"], let host = hosts.split(separator: ",").first.map(String.init),
              !host.isEmpty, !host.hasPrefix("/") else {
            return .failure(ConfigurationError(setting: "DB_IAM_AUTH", value: "true",
                                               help: "needs the database's host name (DATABASE_URL or PGHOST): the token is signed for it."))
        }
        let ports = settings["port"] ?? environment["PGPORT"] ?? "5432"
        guard let port = Int(ports.split(separator: ",").first ?? ""), (1...65535).contains(port) else {
            return .failure(ConfigurationError(setting: "DB_IAM_AUTH", value: "true", help: "the database port \(ports) is not a port number."))
        }
        guard let user = settings["user"] ?? environment["PGUSER"], !user.isEmpty else {
            return .failure(ConfigurationError(setting: "DB_IAM_AUTH", value: "true",
                                               help: "needs the database user (DATABASE_URL or PGUSER): the token names it."))
        }
        return .success(Target(host: host, port: port, user: user))
    }

    public func prepare(_ settings: inout PostgresConnectionSettings) -> PostgresError? {
        guard case .success(let target) = Self.target(of: settings, environment: environment) else {
            return PostgresError(.unavailable, message: "no host or user to sign an IAM authentication token for")
        }
        guard let credentials = aws.current() else {
            aws.refreshSoon()
            return PostgresError(.unavailable, message: "no valid AWS credentials to sign an IAM authentication token with")
        }
        let now = clock()
        let token = cache.withLock { cache -> String in
            if let cached = cache[target], cached.accessKeyId == credentials.accessKeyId,
               now >= cached.created, now - cached.created < Self.reuseSeconds {
                return cached.token
            }
            let token = RDSAuthToken.generate(host: target.host, port: target.port, user: target.user, region: region,
                                              credentials: credentials, epochSeconds: now)
            cache[target] = Cached(accessKeyId: credentials.accessKeyId, token: token, created: now)
            return token
        }
        settings["password"] = token
        return nil
    }

    public func rejected(sqlState: String) {
        // A refused token: sign the next ones anew, with fresh credentials if the role's changed.
        cache.withLock { $0.removeAll() }
        aws.refreshSoon()
    }
}
