@testable import Auth
import JSON
import Testing

@Suite struct VerifiedTokenCacheTests {
    @Test func entriesLastUntilExpiryAndTheCacheStaysBounded() {
        let cache = VerifiedTokenCache()
        cache.store("Bearer a", Caller(owner: "u", expiresAt: 100), now: 0)
        #expect(cache.caller(for: "Bearer a", now: 99)?.owner == "u")
        #expect(cache.caller(for: "Bearer a ", now: 99) == nil)
        #expect(cache.caller(for: "Bearer a", now: 100) == nil, "expired entries are dropped")
        #expect(cache.count == 0)
        for i in 0..<(VerifiedTokenCache.capacity + 10) {
            cache.store("t\(i)", Caller(owner: "u", expiresAt: i < 100 ? 5 : 1000), now: 0)
        }
        #expect(cache.count <= VerifiedTokenCache.capacity)
        cache.store("late", Caller(owner: "u", expiresAt: 1000), now: 10)
        #expect(cache.count <= VerifiedTokenCache.capacity)
        #expect(cache.caller(for: "late", now: 10) != nil)
        // Large tokens: the byte budget bounds it before the entry count does.
        let big = String(repeating: "x", count: 8 << 10)
        for i in 0..<400 { cache.store(big + "\(i)", Caller(owner: "u", expiresAt: 1000), now: 10) }
        #expect(cache.bytes <= VerifiedTokenCache.byteBudget)
    }

    @Test func aCachedTokenSkipsTheSignatureCheck() throws {
        let key = TestKey(curve: .p256)
        let now: Int64 = 1_764_979_200
        let store = JWKSKeyStore(source: .inline(Array("{\"keys\":[\(JSONText.object(key.jwk(kid: "k")))]}".utf8)))
        try store.start()
        let policy = TokenPolicy(issuer: "https://issuer.example", audiences: ["a"])
        let authenticator = Authenticator(mode: .jwt(BearerTokenVerifier(policy: policy), store), clock: { now })
        let jws = token(header: #"{"alg":"ES256","kid":"k"}"#, claims: "{\"iss\":\"https://issuer.example\",\"aud\":\"a\",\"exp\":\(now + 60),\"sub\":\"s\"}",
                        key: key, algorithm: .es256)
        guard case .success(let first) = authenticator.authenticate(authorization: "Bearer " + jws, albData: nil, trustedPeer: false) else {
            Issue.record("a valid token was refused"); return
        }
        #expect(first.owner == "s")
        #expect(authenticator.cachedTokens == 1)
        guard case .success = authenticator.authenticate(authorization: "Bearer " + jws, albData: nil, trustedPeer: false) else {
            Issue.record("the cached token was refused"); return
        }
        // An inline JWKS cannot be read again: an unknown kid is refused, and not awaited.
        let other = token(header: #"{"alg":"ES256","kid":"new"}"#, claims: "{}", key: key, algorithm: .es256)
        guard case .failure(let failure) = authenticator.authenticate(authorization: "Bearer " + other, albData: nil, trustedPeer: false) else {
            Issue.record("an unknown kid was accepted"); return
        }
        #expect(failure.reason == .unknownKey && failure.kid == "new")
        #expect(!authenticator.awaitKey("new") {})
    }
}

enum JSONText {
    static func object(_ members: [(key: String, value: JSONValue)]) -> String { JSONValue.object(members).jsonText }
}
