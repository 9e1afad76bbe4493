import Auth
import HTTPClient
import Logging
import Net

/// At start-up: the authenticator `AUTH` asks for, its keys loaded (blocking, before the service
/// listens). Configuration mistakes throw `ConfigurationError` (exit 2); keys that cannot be read
/// throw `StartupDependencyError` (exit 1).
public enum AuthenticationSetup {
    public static func make(_ configuration: AuthConfiguration, environment: [String: String],
                            logger: Logger = Logger(label: "security")) throws -> Authenticator? {
        switch configuration.mode {
        case .off:
            logger.warning("authentication is off (AUTH=off): every client can read and change every todo")
            return nil
        case .jwt:
            guard let issuer = configuration.issuer else {
                throw ConfigurationError(setting: "AUTH_ISSUER", value: "", help: "required with AUTH=jwt: the exact iss of accepted tokens.")
            }
            guard !configuration.audiences.isEmpty else {
                throw ConfigurationError(setting: "AUTH_AUDIENCE", value: "", help: "required with AUTH=jwt: the app client id(s) or audience(s) tokens must be for.")
            }
            var policy = TokenPolicy(issuer: issuer, audiences: configuration.audiences, tokenUse: configuration.tokenUse)
            policy.leeway = configuration.leeway.nanoseconds / 1_000_000_000
            policy.ownerClaim = configuration.ownerClaim
            let source = try jwksSource(configuration, issuer: issuer)
            let keys = JWKSKeyStore(source: source, logger: logger)
            try startKeys(keys, source: source, logger: logger)
            keys.startRefreshing()
            logger.info("authentication: bearer tokens", metadata: [
                "issuer": "\(issuer)", "audiences": "\(configuration.audiences.joined(separator: ","))",
                "tokenUse": "\(configuration.tokenUse ?? "any")", "keys": "\(source)", "ownerClaim": "\(configuration.ownerClaim)",
            ])
            return Authenticator(mode: .jwt(BearerTokenVerifier(policy: policy), keys))
        case .alb:
            guard let arn = configuration.albARN else {
                throw ConfigurationError(setting: "AUTH_ALB_ARN", value: "", help: "required with AUTH=alb: the load balancer's ARN, which signs x-amzn-oidc-data.")
            }
            let source: ALBKeyStore.Source
            if let directory = configuration.albKeysDirectory {
                source = .directory(directory)
            } else if let base = configuration.albKeysURL {
                source = .url(base)
            } else {
                guard let region = [environment["AWS_REGION"], environment["AWS_DEFAULT_REGION"]].compactMap({ $0 }).first(where: { !$0.isEmpty })
                        ?? arn.split(separator: ":", omittingEmptySubsequences: false).dropFirst(3).first.map(String.init) else {
                    throw ConfigurationError(setting: "AWS_REGION", value: "", help: "needed with AUTH=alb to fetch the load balancer's keys.")
                }
                source = .url("https://public-keys.auth.elb.\(region).amazonaws.com")
            }
            logger.info("authentication: the load balancer's x-amzn-oidc-data", metadata: ["signer": "\(arn)", "keys": "\(source)"])
            let verifier = ALBTokenVerifier(loadBalancerARN: arn, leeway: configuration.leeway.nanoseconds / 1_000_000_000)
            return Authenticator(mode: .alb(verifier, ALBKeyStore(source: source, logger: logger)))
        }
    }

    /// `AUTH_JWKS_FILE`, `AUTH_JWKS`, `AUTH_JWKS_URL` (one), else a Cognito issuer's own
    /// `/.well-known/jwks.json`.
    static func jwksSource(_ configuration: AuthConfiguration, issuer: String) throws(ConfigurationError) -> JWKSKeyStore.Source {
        let given = [configuration.jwksFile != nil, configuration.jwks != nil, configuration.jwksURL != nil].filter { $0 }.count
        guard given <= 1 else {
            throw ConfigurationError(setting: "AUTH_JWKS", value: "(several)", help: "give one of AUTH_JWKS_FILE, AUTH_JWKS, AUTH_JWKS_URL.")
        }
        if let file = configuration.jwksFile { return .file(file) }
        if let inline = configuration.jwks { return .inline(Array(inline.utf8)) }
        var text = configuration.jwksURL
        if text == nil, let url = HTTPClientURL(issuer), url.isTLS, url.host.hasPrefix("cognito-idp."), url.host.hasSuffix(".amazonaws.com") {
            text = issuer + "/.well-known/jwks.json"
        }
        guard let text else {
            throw ConfigurationError(setting: "AUTH_JWKS_URL", value: "", help: "AUTH=jwt needs the issuer's keys: AUTH_JWKS_URL, AUTH_JWKS_FILE or AUTH_JWKS (only a Cognito issuer's URL is known).")
        }
        guard let url = HTTPClientURL(text), url.isTLS else {
            throw ConfigurationError(setting: "AUTH_JWKS_URL", value: text, help: "must be an https:// URL (keys fetched in clear could be replaced on the way).")
        }
        return .url(url)
    }

    /// The first read of the keys: a file or inline JWKS that cannot be used is a configuration
    /// error; a URL is retried like a secret (`StartupRetry`).
    static func startKeys(_ keys: JWKSKeyStore, source: JWKSKeyStore.Source, logger: Logger) throws {
        guard case .url = source else {
            do { return try keys.start() } catch {
                throw ConfigurationError(setting: source.settingName, value: "(see the message)", help: error.description)
            }
        }
        try StartupRetry.run("the token signing keys", logger: logger) { () throws(JWKSError) in try keys.start() }
    }
}

extension JWKSKeyStore.Source {
    var settingName: String {
        switch self {
        case .inline: "AUTH_JWKS"
        case .file: "AUTH_JWKS_FILE"
        case .url: "AUTH_JWKS_URL"
        }
    }
}
