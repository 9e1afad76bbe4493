import JSON

/// What a bearer token must say to be accepted (`AUTH=jwt`), after aws-jwt-verify's checks:
/// issuer and audience required, algorithms pinned to the key, expiry required.
public struct TokenPolicy: Sendable {
    /// `AUTH_ISSUER`: the exact `iss`.
    public var issuer: String
    /// `AUTH_AUDIENCE`: any one of them in `aud`, or in `client_id` for Cognito access tokens.
    public var audiences: [String]
    /// `AUTH_TOKEN_USE`: Cognito's `token_use` claim must equal it (`access` or `id`).
    public var tokenUse: String?
    /// `AUTH_LEEWAY`: clock skew allowed on `exp`, `nbf`, `iat` (seconds).
    public var leeway: Int64 = 30
    /// `AUTH_OWNER_CLAIM`: the string claim naming the owner.
    public var ownerClaim = "sub"

    public init(issuer: String, audiences: [String], tokenUse: String? = nil) {
        self.issuer = issuer
        self.audiences = audiences
        self.tokenUse = tokenUse
    }

    /// Owners are stored with each todo and compared by equality.
    static let maxOwnerLength = 256
}

/// Where a verifier finds the key a token names.
public protocol VerificationKeys: Sendable {
    /// The key for `kid` now, if known (never blocks).
    func key(for kid: String) -> VerificationKey?
}

/// A key and the algorithm its JWK pins, if any.
public struct VerificationKey: Sendable {
    public let key: PublicKey
    public let algorithm: SignatureAlgorithm?
    /// The JWK's `alg` named something this service does not accept: the key is unusable.
    public let algorithmUnsupported: Bool

    public init(key: PublicKey, algorithm: SignatureAlgorithm?, algorithmUnsupported: Bool = false) {
        self.key = key
        self.algorithm = algorithm
        self.algorithmUnsupported = algorithmUnsupported
    }
}

/// Verifies `Authorization: Bearer` tokens (RFC 6750, RFC 7519) against a `TokenPolicy`. Pure
/// apart from the key lookup: `now` is given.
public struct BearerTokenVerifier: Sendable {
    public let policy: TokenPolicy

    public init(policy: TokenPolicy) {
        self.policy = policy
    }

    /// The header field's value → the caller, or why not. The token itself never appears in an
    /// error.
    public func verify(authorization: String?, keys: some VerificationKeys, now: Int64) -> Result<Caller, AuthFailure> {
        guard let authorization else { return .failure(AuthFailure(.missing, "no credentials")) }
        // RFC 6750 §2.1: "Bearer" (case-insensitive, RFC 9110 §11.1), one space, the token.
        guard authorization.utf8.count > 7, authorization.utf8.prefix(7).map({ $0 | 0x20 }) == Array("bearer ".utf8) else {
            return .failure(AuthFailure(.malformed, "the Authorization scheme is not Bearer"))
        }
        let token = String(authorization.utf8.dropFirst(7).drop { $0 == 0x20 })!
        return verify(token: token, keys: keys, now: now)
    }

    public func verify(token: String, keys: some VerificationKeys, now: Int64) -> Result<Caller, AuthFailure> {
        let jws: CompactJWS
        switch CompactJWS.parse(token) {
        case .success(let parsed): jws = parsed
        case .failure(let failure): return .failure(failure)
        }
        // The header decides nothing until checked against what we accept.
        guard let name = jws.header.string("alg") else { return .failure(AuthFailure(.malformed, "the token header has no alg")) }
        guard let algorithm = SignatureAlgorithm(rawValue: name) else {
            // Never the token's own text: it is the client's, and it lands in a header and a log.
            return .failure(AuthFailure(.algorithmNotAllowed, "the token's algorithm is not accepted"))
        }
        if jws.header.has("crit") {
            // RFC 7515 §4.1.11: an extension the recipient does not understand makes the JWS invalid.
            return .failure(AuthFailure(.malformed, "the token has critical header parameters this service does not understand"))
        }
        guard let kid = jws.header.string("kid"), !kid.isEmpty, kid.utf8.count <= 256 else {
            return .failure(AuthFailure(.malformed, "the token header has no kid"))
        }
        guard let entry = keys.key(for: kid) else { return .failure(.unknownKey(kid)) }
        guard !entry.algorithmUnsupported, entry.algorithm.map({ $0 == algorithm }) ?? true, algorithm.fits(entry.key.kind) else {
            return .failure(AuthFailure(.algorithmNotAllowed, "algorithm \(algorithm.rawValue) does not fit the key"))
        }
        let verified = jws.signingInput.utf8.withContiguousStorageIfAvailable { input in
            entry.key.verify(algorithm, message: UnsafeRawBufferPointer(input), signature: jws.signature)
        } ?? Array(jws.signingInput.utf8).withUnsafeBytes { entry.key.verify(algorithm, message: $0, signature: jws.signature) }
        guard verified else { return .failure(AuthFailure(.badSignature, "the signature does not verify")) }

        let claims: [(key: String, value: JSONValue)]
        switch jws.claims() {
        case .success(let parsed): claims = parsed
        case .failure(let failure): return .failure(failure)
        }
        return check(claims, now: now)
    }

    func check(_ claims: [(key: String, value: JSONValue)], now: Int64) -> Result<Caller, AuthFailure> {
        guard claims.string("iss") == policy.issuer else { return .failure(AuthFailure(.wrongIssuer, "the token is from another issuer")) }
        if let tokenUse = policy.tokenUse, claims.string("token_use") != tokenUse {
            return .failure(AuthFailure(.wrongTokenUse, "the token is not an \(tokenUse) token"))
        }
        let audienceMatches: Bool
        if policy.tokenUse == "access" {
            // Cognito access tokens carry the app client in client_id and have no aud.
            audienceMatches = claims.string("client_id").map(policy.audiences.contains) ?? false
        } else {
            switch claims.first(where: { $0.key == "aud" })?.value {
            case .string(let audience)?: audienceMatches = policy.audiences.contains(audience)
            case .array(let values)?:
                audienceMatches = values.contains { if case .string(let audience) = $0 { policy.audiences.contains(audience) } else { false } }
            default: audienceMatches = false
            }
        }
        guard audienceMatches else { return .failure(AuthFailure(.wrongAudience, "the token is for another audience")) }
        return Self.checkTimes(claims, now: now, leeway: policy.leeway, ownerClaim: policy.ownerClaim)
    }

    /// `exp` required, `nbf` and `iat` honoured, with `leeway`; the owner claim a non-empty string.
    static func checkTimes(_ claims: [(key: String, value: JSONValue)], now: Int64, leeway: Int64, ownerClaim: String) -> Result<Caller, AuthFailure> {
        guard case .some(.some(let expiry)) = claims.numericDate("exp") else {
            return .failure(AuthFailure(claims.has("exp") ? .malformed : .missingClaim, "the token has no valid exp"))
        }
        guard now < expiry + leeway else { return .failure(AuthFailure(.expired, "the token has expired")) }
        switch claims.numericDate("nbf") {
        case .some(.some(let notBefore)) where now + leeway < notBefore:
            return .failure(AuthFailure(.notYetValid, "the token is not valid yet"))
        case .some(nil): return .failure(AuthFailure(.malformed, "the token's nbf is not a number"))
        default: break
        }
        switch claims.numericDate("iat") {
        case .some(.some(let issuedAt)) where now + leeway < issuedAt:
            return .failure(AuthFailure(.notYetValid, "the token was issued in the future"))
        case .some(nil): return .failure(AuthFailure(.malformed, "the token's iat is not a number"))
        default: break
        }
        // No control characters: NUL would cut the owner short where libpq takes it as a C string
        // (`alice\u0000x` would act as `alice`).
        guard let owner = claims.string(ownerClaim), !owner.isEmpty, owner.utf8.count <= TokenPolicy.maxOwnerLength,
              owner.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x7F }) else {
            return .failure(AuthFailure(.missingClaim, "the token has no \(ownerClaim) claim"))
        }
        return .success(Caller(owner: owner, expiresAt: expiry + leeway))
    }
}
