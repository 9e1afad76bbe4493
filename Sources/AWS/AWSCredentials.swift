/// An access key pair, with the session token and expiry of temporary credentials.
/// `description` shows the key id only: the secret key and the token never reach a log.
public struct AWSCredentials: Sendable, Equatable, CustomStringConvertible {
    public let accessKeyId: String
    public let secretAccessKey: String
    public let sessionToken: String?
    /// Unix seconds; nil for long-term keys.
    public let expiration: Int64?

    public init(accessKeyId: String, secretAccessKey: String, sessionToken: String? = nil, expiration: Int64? = nil) {
        self.accessKeyId = accessKeyId
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.expiration = expiration
    }

    /// Still usable at `now` (Unix seconds), with `margin` seconds to spare.
    public func isValid(at now: Int64, margin: Int64 = 0) -> Bool {
        expiration.map { now + margin < $0 } ?? true
    }

    public var description: String { "AWSCredentials(\(accessKeyId), \(expiration.map { "expires \($0)" } ?? "long-term"))" }
}

/// A setting of the AWS configuration that cannot be used, named (exit code 2 at start).
public struct AWSConfigurationError: Error, Sendable, CustomStringConvertible {
    public let setting: String
    public let message: String

    public init(setting: String, message: String) {
        self.setting = setting
        self.message = message
    }

    public var description: String { "\(setting): \(message)" }
}

/// A call to AWS that failed: the service's error code when it answered (`AccessDeniedException`,
/// `ResourceNotFoundException`, ...), else the transport's message. Never a header or a body.
public struct AWSError: Error, Sendable, CustomStringConvertible {
    public let code: String
    public let message: String
    /// A 4xx other than throttling: retrying the same call will not help.
    public let isPermanent: Bool

    public init(code: String, message: String, isPermanent: Bool = false) {
        self.code = code
        self.message = message
        self.isPermanent = isPermanent
    }

    public var description: String { "\(code): \(message)" }
}
