import Net

/// `AUTH` and its settings (README, "Authentication and todo owners").
public struct AuthConfiguration: Sendable {
    public enum Mode: String, Sendable {
        /// Today's contract: every client can read and change every todo.
        case off
        /// `Authorization: Bearer` tokens from an OIDC issuer (Cognito or any other).
        case jwt
        /// The ALB authenticates users; the service believes its `x-amzn-oidc-data`.
        case alb
    }

    public var mode = Mode.off
    public var issuer: String?
    public var audiences: [String] = []
    public var tokenUse: String?
    public var jwksFile: String?
    public var jwks: String?
    public var jwksURL: String?
    public var leeway = TimeSpan.seconds(30)
    public var ownerClaim = "sub"
    public var albARN: String?
    public var albKeysDirectory: String?
    public var albKeysURL: String?

    public init() {}
}
