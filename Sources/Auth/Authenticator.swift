import AWS

/// The service's authentication (`AUTH`): which credentials a request must carry, and whether
/// they prove an owner. HTTP-agnostic: it is given the header values and whether the peer is a
/// trusted proxy; TodoAPI turns its answers into 401s, log lines and metrics.
public final class Authenticator: Sendable {
    public enum Mode: Sendable {
        case jwt(BearerTokenVerifier, JWKSKeyStore)
        case alb(ALBTokenVerifier, ALBKeyStore)
    }

    public enum Outcome: Sendable {
        case accepted(Caller)
        case refused(AuthFailure)
        /// The token names a key not in hand; a read of the keys is under way. Call `authenticate`
        /// again after `then` (given to `awaitKeys`) runs.
        case awaitingKeys(kid: String)
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
    /// `mayWait`: false on the second try after a read of the keys (no second wait).
    public func authenticate(authorization: String?, albData: String?, trustedPeer: Bool, mayWait: Bool = true,
                             then: @escaping @Sendable () -> Void = {}) -> Outcome {
        let now = clock()
        switch mode {
        case .jwt(let verifier, let keys):
            guard let authorization else { return .refused(AuthFailure(.missing, "no credentials")) }
            if let caller = cache.caller(for: authorization, now: now) { return .accepted(caller) }
            let result = verifier.verify(authorization: authorization, keys: keys, now: now)
            return finish(result, token: authorization, now: now) { kid in mayWait && keys.refresh(then: then) }
        case .alb(let verifier, let keys):
            guard let albData else { return .refused(AuthFailure(.missing, "no credentials")) }
            guard trustedPeer else {
                return .refused(AuthFailure(.untrustedProxy, "x-amzn-oidc-data is believed only from the load balancer"))
            }
            if let caller = cache.caller(for: albData, now: now) { return .accepted(caller) }
            let result = verifier.verify(token: albData, keys: keys, now: now)
            return finish(result, token: albData, now: now) { kid in mayWait && keys.fetch(kid, then: then) }
        }
    }

    private func finish(_ result: Result<Caller, AuthFailure>, token: String, now: Int64,
                        fetch: (String) -> Bool) -> Outcome {
        switch result {
        case .success(let caller):
            cache.store(token, caller, now: now)
            return .accepted(caller)
        case .failure(let failure) where failure.reason == .unknownKey:
            guard let kid = Self.kid(of: token), fetch(kid) else { return .refused(failure) }
            return .awaitingKeys(kid: kid)
        case .failure(let failure):
            return .refused(failure)
        }
    }

    /// The kid of a token whose header parsed (it did, to get as far as unknown_key).
    static func kid(of token: String) -> String? {
        let bearer = token.utf8.prefix(7).map({ $0 | 0x20 }) == Array("bearer ".utf8) ? String(token.dropFirst(7)) : token
        guard case .success(let jws) = CompactJWS.parse(bearer.trimmingLeadingSpaces, allowPadding: true) else { return nil }
        return jws.header.string("kid")
    }

    var cachedTokens: Int { cache.count }
}

extension String {
    fileprivate var trimmingLeadingSpaces: String { String(drop { $0 == " " }) }
}
