import Dispatch
import JSON
import HTTPClient
import Logging
import Net
import Synchronization

/// The ALB's token signing keys (`AUTH=alb`): one PEM public key per `kid`, fetched from
/// `https://public-keys.auth.elb.<region>.amazonaws.com/<kid>` (or `AUTH_ALB_KEYS_URL`, e.g. for
/// GovCloud) or read from `AUTH_ALB_KEYS_DIR/<kid>`, the first time a token names it, off the
/// loops. A key never changes for its kid, so it is kept; a kid that could not be fetched is not
/// tried again for 30 s.
public final class ALBKeyStore: VerificationKeys {
    public enum Source: Sendable, CustomStringConvertible {
        case directory(String)
        case url(String)

        public var description: String {
            switch self {
            case .directory(let path): path
            case .url(let base): base
            }
        }
    }

    static let retryGap = TimeSpan.seconds(30)
    /// Kids kept at most (the ALB uses a handful per region); more are fetched but not kept.
    static let maxKeys = 64
    static let maxWaiters = 1024

    private struct State {
        var keys: [String: VerificationKey] = [:]
        var fetching: [String: [@Sendable () -> Void]] = [:]
        var failedAt: [String: MonotonicTime] = [:]
        var waiting = 0
    }

    public let source: Source
    private let client: HTTPClient
    private let logger: Logger
    private let state = Mutex(State())
    private let queue = DispatchQueue(label: "todo-api.alb-keys")

    public init(source: Source, client: HTTPClient = HTTPClient(), logger: Logger = Logger(label: "security")) {
        self.source = source
        self.client = client
        self.logger = logger
    }

    public func key(for kid: String) -> VerificationKey? {
        state.withLock { $0.keys[kid] }
    }

    /// The ALB's kids are UUIDs: anything else never reaches a URL or a file name.
    static func isValidKid(_ kid: String) -> Bool {
        (1...64).contains(kid.utf8.count) && kid.utf8.allSatisfy {
            ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z"))
                || ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z")) || $0 == UInt8(ascii: "-")
        }
    }

    /// Fetches the key for `kid` unless it failed in the last 30 s; `then` runs (on this store's
    /// queue) when the fetch ends. False: no fetch will come soon; refuse at once.
    public func fetch(_ kid: String, then: @escaping @Sendable () -> Void) -> Bool {
        guard Self.isValidKid(kid) else { return false }
        let now = MonotonicTime.now()
        let start: Bool? = state.withLock { state in
            if state.keys[kid] != nil { return nil }
            if let failed = state.failedAt[kid], now - failed < Self.retryGap { return nil }
            guard state.waiting < Self.maxWaiters else { return nil }
            state.waiting += 1
            if state.fetching[kid] != nil {
                state.fetching[kid]!.append(then)
                return false
            }
            state.fetching[kid] = [then]
            return true
        }
        guard let start else {
            // Known meanwhile: answer now by retrying at once.
            if key(for: kid) != nil { queue.async(execute: then); return true }
            return false
        }
        if start { queue.async { self.load(kid) } }
        return true
    }

    private func load(_ kid: String) {
        var loaded: VerificationKey?
        var failure: String?
        switch source {
        case .directory(let path):
            if let pem = FileBytes.read("\(path)/\(kid)", limit: 16 << 10), let key = PublicKey.fromPEM(pem) {
                loaded = VerificationKey(key: key, algorithm: .es256)
            } else {
                failure = "no usable PEM public key in \(path)/\(kid)"
            }
        case .url(let base):
            guard let url = HTTPClientURL("\(base)/\(kid)") else { failure = "invalid key URL"; break }
            do {
                let response = try client.perform(HTTPClientRequest(method: "GET", url: url, headers: [("User-Agent", "todo-api")]))
                if response.status == 200, let key = PublicKey.fromPEM(response.body) {
                    loaded = VerificationKey(key: key, algorithm: .es256)
                } else {
                    failure = "\(url.hostField) answered \(response.status) without a usable PEM public key"
                }
            } catch {
                failure = "\(url.hostField): \(error.message)"
            }
        }
        let now = MonotonicTime.now()
        let woken = state.withLock { state -> [@Sendable () -> Void] in
            if let loaded, state.keys.count < Self.maxKeys { state.keys[kid] = loaded }
            if loaded == nil { state.failedAt[kid] = now }
            if state.failedAt.count > Self.maxKeys { state.failedAt = state.failedAt.filter { now - $0.value < Self.retryGap } }
            let woken = state.fetching.removeValue(forKey: kid) ?? []
            state.waiting -= woken.count
            return woken
        }
        if let failure {
            logger.warning("ALB token signing key not fetched", metadata: ["kid": "\(kid)", "source": "\(source)", "error": "\(failure)"])
        } else {
            logger.info("ALB token signing key fetched", metadata: ["kid": "\(kid)", "source": "\(source)"])
        }
        for wake in woken { wake() }
    }
}

/// Verifies the ALB's `x-amzn-oidc-data` (Elastic Load Balancing, "Authenticate users using an
/// Application Load Balancer"): ES256 over the padded base64url segments as sent, `signer` the
/// configured load balancer, not expired; the owner is `sub`.
public struct ALBTokenVerifier: Sendable {
    public let loadBalancerARN: String
    public let leeway: Int64

    public init(loadBalancerARN: String, leeway: Int64 = 30) {
        self.loadBalancerARN = loadBalancerARN
        self.leeway = leeway
    }

    public func verify(token: String, keys: some VerificationKeys, now: Int64) -> Result<Caller, AuthFailure> {
        let jws: CompactJWS
        switch CompactJWS.parse(token, allowPadding: true) {
        case .success(let parsed): jws = parsed
        case .failure(let failure): return .failure(failure)
        }
        guard jws.header.string("alg") == SignatureAlgorithm.es256.rawValue else {
            return .failure(AuthFailure(.algorithmNotAllowed, "the ALB signs with ES256"))
        }
        guard jws.header.string("signer") == loadBalancerARN else {
            return .failure(AuthFailure(.wrongSigner, "the token was not signed by this service's load balancer"))
        }
        guard let kid = jws.header.string("kid"), ALBKeyStore.isValidKid(kid) else {
            return .failure(AuthFailure(.malformed, "the token header has no valid kid"))
        }
        guard let entry = keys.key(for: kid) else { return .failure(.unknownKey(kid)) }
        let verified = Array(jws.signingInput.utf8).withUnsafeBytes { entry.key.verify(.es256, message: $0, signature: jws.signature) }
        guard verified else { return .failure(AuthFailure(.badSignature, "the signature does not verify")) }
        let claims: [(key: String, value: JSONValue)]
        switch jws.claims(allowPadding: true) {
        case .success(let parsed): claims = parsed
        case .failure(let failure): return .failure(failure)
        }
        // The ALB puts exp in the header; payloads from the IdP usually carry it too.
        var withExpiry = claims
        if !claims.has("exp"), let headerExpiry = jws.header.first(where: { $0.key == "exp" }) { withExpiry.append(headerExpiry) }
        return BearerTokenVerifier.checkTimes(withExpiry, now: now, leeway: leeway, ownerClaim: "sub")
    }
}
