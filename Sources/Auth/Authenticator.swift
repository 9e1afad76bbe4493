import AWS

/// The service's authentication (`AUTH`): which credentials a request must carry, and whether
/// they prove an owner. HTTP-agnostic: it is given the header values and whether the peer is a
/// trusted proxy; TodoAPI turns its answers into 401s, log lines and metrics.
public final class Authenticator: Sendable {
    public enum Mode: Sendable {
        case jwt(BearerTokenVerifier, JWKSKeyStore)
        case alb(ALBTokenVerifier, ALBKeyStore)
    }

    public let mode: Mode
    private let cache = VerifiedTokenCache()
    private let clock: @Sendable () -> Int64

    public init(mode: Mode, clock: @escaping @Sendable () -> Int64 = { AWSTime.now() }) {
        self.mode = mode
        self.clock = clock
    }

    /// `authorization`: the Authorization field; `albData`: x-amzn-oidc-data;
    /// `trustedPeer`: the TCP peer is a trusted proxy (only the ALB's header is believed then).
    /// A refusal for `unknown_key` carries the kid: see `awaitKey`.
    public func authenticate(authorization: String?, albData: String?, trustedPeer: Bool) -> Result<Caller, AuthFailure> {
        let now = clock()
        let token: String
        let result: Result<Caller, AuthFailure>
        switch mode {
        case .jwt(let verifier, let keys):
            guard let authorization else { return .failure(AuthFailure(.missing, "no credentials")) }
            if let caller = cache.caller(for: authorization, now: now) { return .success(caller) }
            token = authorization
            result = verifier.verify(authorization: authorization, keys: keys, now: now)
        case .alb(let verifier, let keys):
            guard let albData else { return .failure(AuthFailure(.missing, "no credentials")) }
            guard trustedPeer else {
                return .failure(AuthFailure(.untrustedProxy, "x-amzn-oidc-data is believed only from the load balancer"))
            }
            if let caller = cache.caller(for: albData, now: now) { return .success(caller) }
            token = albData
            result = verifier.verify(token: albData, keys: keys, now: now)
        }
        if case .success(let caller) = result { cache.store(token, caller, now: now) }
        return result
    }

    /// After an `unknown_key` refusal: reads the keys again if a read may run now (or one is under
    /// way), and calls `then` when it ends, off the loops. False: no read will come soon (the
    /// JWKS 30 s gap, an inline JWKS, a kid that failed lately): refuse at once.
    public func awaitKey(_ kid: String, then: @escaping @Sendable () -> Void) -> Bool {
        switch mode {
        case .jwt(_, let keys): keys.refresh(then: then)
        case .alb(_, let keys): keys.fetch(kid, then: then)
        }
    }

    var cachedTokens: Int { cache.count }
}
