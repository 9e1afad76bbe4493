@testable import Auth
import JSON
import Net
import Testing

@Suite struct BearerTokenVerifierTests {
    static let rsa = TestKey()
    static let ec = TestKey(curve: .p256)
    static let ec384 = TestKey(curve: .p384)
    static let now: Int64 = 1_764_979_200
    static let issuer = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example"

    static let keys: StaticKeys = {
        func entry(_ key: TestKey, kid: String, alg: String? = nil) -> VerificationKey {
            let members = key.jwk(kid: kid, alg: alg)
            let kty = members.string("kty")!
            let name = members.string("alg")
            return VerificationKey(key: PublicKey.fromJWK(kty: kty, members: members)!, algorithm: name.flatMap(SignatureAlgorithm.init(rawValue:)))
        }
        return StaticKeys(keys: ["rsa": entry(rsa, kid: "rsa"), "ec": entry(ec, kid: "ec"), "ec384": entry(ec384, kid: "ec384"),
                                 "rsa-pinned": entry(rsa, kid: "rsa-pinned", alg: "RS384")])
    }()

    let verifier = BearerTokenVerifier(policy: TokenPolicy(issuer: issuer, audiences: ["app-client", "other"]))

    func claims(_ extra: String = "", exp: Int64 = now + 3600, aud: String = "\"app-client\"", sub: String? = "user-1") -> String {
        "{\"iss\":\"\(Self.issuer)\",\"aud\":\(aud),\"exp\":\(exp),\"iat\":\(Self.now - 10)\(sub.map { ",\"sub\":\"\($0)\"" } ?? "")\(extra)}"
    }

    func verify(_ token: String, _ verifier: BearerTokenVerifier? = nil) -> Result<Caller, AuthFailure> {
        (verifier ?? self.verifier).verify(authorization: "Bearer " + token, keys: Self.keys, now: Self.now)
    }

    func reason(_ token: String, _ verifier: BearerTokenVerifier? = nil) -> AuthFailure.Reason? {
        if case .failure(let failure) = verify(token, verifier) { return failure.reason }
        return nil
    }

    @Test(arguments: [("rsa", SignatureAlgorithm.rs256), ("rsa", .rs384), ("rsa", .rs512), ("rsa", .ps256), ("ec", .es256), ("ec384", .es384)])
    func everyAcceptedAlgorithmVerifies(kid: String, algorithm: SignatureAlgorithm) throws {
        let key = kid == "rsa" ? Self.rsa : kid == "ec" ? Self.ec : Self.ec384
        let jws = token(header: "{\"alg\":\"\(algorithm.rawValue)\",\"kid\":\"\(kid)\"}", claims: claims(), key: key, algorithm: algorithm)
        #expect(try verify(jws).get() == Caller(owner: "user-1", expiresAt: Self.now + 3600 + 30))
    }

    @Test func tamperingIsCaught() {
        let jws = token(header: #"{"alg":"RS256","kid":"rsa"}"#, claims: claims(), key: Self.rsa, algorithm: .rs256)
        let parts = jws.split(separator: ".").map(String.init)
        let otherPayload = Base64URL.encode(Array(claims(sub: "admin").utf8))
        #expect(reason(parts[0] + "." + otherPayload + "." + parts[2]) == .badSignature)
        var signature = Base64URL.decode(parts[2])!
        signature[10] ^= 1
        #expect(reason(parts[0] + "." + parts[1] + "." + Base64URL.encode(signature)) == .badSignature)
        // Signed by another key under this kid.
        #expect(reason(token(header: #"{"alg":"RS256","kid":"rsa"}"#, claims: claims(), key: TestKey(), algorithm: .rs256)) == .badSignature)
    }

    @Test func algorithmsAreNotTheTokensChoice() {
        let payload = Base64URL.encode(Array(claims().utf8))
        #expect(reason(Base64URL.encode(Array(#"{"alg":"none","kid":"rsa"}"#.utf8)) + "." + payload + ".") == .algorithmNotAllowed)
        #expect(reason(Base64URL.encode(Array(#"{"alg":"HS256","kid":"rsa"}"#.utf8)) + "." + payload + ".c2ln") == .algorithmNotAllowed)
        // An RSA algorithm with an EC key, and a JWK pinned to RS384 used with RS256.
        #expect(reason(token(header: #"{"alg":"RS256","kid":"ec"}"#, claims: claims(), key: Self.rsa, algorithm: .rs256)) == .algorithmNotAllowed)
        #expect(reason(token(header: #"{"alg":"ES384","kid":"ec"}"#, claims: claims(), key: Self.ec384, algorithm: .es384)) == .algorithmNotAllowed)
        #expect(reason(token(header: #"{"alg":"RS256","kid":"rsa-pinned"}"#, claims: claims(), key: Self.rsa, algorithm: .rs256)) == .algorithmNotAllowed)
        #expect(reason(token(header: #"{"alg":"RS384","kid":"rsa-pinned"}"#, claims: claims(), key: Self.rsa, algorithm: .rs384)) == nil)
    }

    @Test func headersItDoesNotUnderstandAreRefused() {
        #expect(reason(token(header: #"{"alg":"RS256","kid":"rsa","crit":["exp2"],"exp2":1}"#, claims: claims(), key: Self.rsa, algorithm: .rs256)) == .malformed)
        #expect(reason(token(header: #"{"alg":"RS256"}"#, claims: claims(), key: Self.rsa, algorithm: .rs256)) == .malformed)
        #expect(reason(token(header: #"{"alg":"RS256","kid":"rsa","kid":"ec"}"#, claims: claims(), key: Self.rsa, algorithm: .rs256)) == .malformed)
        #expect(reason(token(header: #"{"alg":"RS256","kid":"nobody"}"#, claims: claims(), key: Self.rsa, algorithm: .rs256)) == .unknownKey)
    }

    @Test func claimsAreChecked() {
        func signed(_ claims: String) -> String { token(header: #"{"alg":"ES256","kid":"ec"}"#, claims: claims, key: Self.ec, algorithm: .es256) }
        #expect(reason(signed(claims(exp: Self.now - 31))) == .expired)
        #expect(reason(signed(claims(exp: Self.now - 29))) == nil, "inside the leeway")
        #expect(reason(signed(claims(",\"nbf\":\(Self.now + 60)"))) == .notYetValid)
        #expect(reason(signed(claims(",\"nbf\":\(Self.now + 20)"))) == nil)
        #expect(reason(signed("{\"iss\":\"\(Self.issuer)\",\"aud\":\"app-client\",\"exp\":\(Self.now + 60),\"iat\":\(Self.now + 120),\"sub\":\"u\"}")) == .notYetValid)
        #expect(reason(signed("{\"iss\":\"https://evil.example\",\"aud\":\"app-client\",\"exp\":\(Self.now + 60),\"sub\":\"u\"}")) == .wrongIssuer)
        #expect(reason(signed(claims(aud: "\"someone-else\""))) == .wrongAudience)
        #expect(reason(signed(claims(aud: "[\"x\",\"other\"]"))) == nil)
        #expect(reason(signed(claims(sub: nil))) == .missingClaim)
        #expect(reason(signed(claims(sub: "alice\\u0000x"))) == .missingClaim, "NUL would cut the owner short in libpq")
        #expect(reason(signed("{\"iss\":\"\(Self.issuer)\",\"aud\":\"app-client\",\"sub\":\"u\"}")) == .missingClaim)
        #expect(reason(signed(claims(",\"exp2\":true").replacingOccurrences("\"exp\":\(Self.now + 3600)", "\"exp\":\"soon\""))) == .malformed)
    }

    @Test func cognitoAccessTokensUseClientIdAndTokenUse() {
        var policy = TokenPolicy(issuer: Self.issuer, audiences: ["app-client"], tokenUse: "access")
        policy.ownerClaim = "sub"
        let access = BearerTokenVerifier(policy: policy)
        func signed(_ claims: String) -> String { token(header: #"{"alg":"RS256","kid":"rsa"}"#, claims: claims, key: Self.rsa, algorithm: .rs256) }
        let base = "\"iss\":\"\(Self.issuer)\",\"exp\":\(Self.now + 60),\"sub\":\"u\""
        #expect(reason(signed("{\(base),\"token_use\":\"access\",\"client_id\":\"app-client\"}"), access) == nil)
        #expect(reason(signed("{\(base),\"token_use\":\"id\",\"aud\":\"app-client\"}"), access) == .wrongTokenUse)
        #expect(reason(signed("{\(base),\"token_use\":\"access\",\"client_id\":\"other\"}"), access) == .wrongAudience)
    }

    @Test func theAuthorizationFieldItself() {
        #expect(verifier.verify(authorization: nil, keys: Self.keys, now: Self.now).failureReason == .missing)
        #expect(verifier.verify(authorization: "Basic dXNlcjpwdw==", keys: Self.keys, now: Self.now).failureReason == .malformed)
        #expect(verifier.verify(authorization: "Bearer " + String(repeating: "a", count: 9000), keys: Self.keys, now: Self.now).failureReason == .malformed)
        let jws = token(header: #"{"alg":"ES256","kid":"ec"}"#, claims: claims(), key: Self.ec, algorithm: .es256)
        #expect(verifier.verify(authorization: "bearer " + jws, keys: Self.keys, now: Self.now).failureReason == nil, "the scheme is case-insensitive")
        #expect(AuthFailure(.missing, "x").wwwAuthenticate == "Bearer")
        // Whatever a description held, it cannot end the header line.
        #expect(AuthFailure(.malformed, "a\r\nSet-Cookie: x=\"1\"").wwwAuthenticate == "Bearer error=\"invalid_token\", error_description=\"aSet-Cookie: x=1\"")
        let injected = Base64URL.encode(Array(#"{"alg":"\r\nSet-Cookie:a=b","kid":"x"}"#.utf8)) + ".e30.c2ln"
        guard case .failure(let failure) = verify(injected) else { Issue.record("accepted"); return }
        #expect(failure.reason == .algorithmNotAllowed && !failure.description.contains("Set-Cookie"))
        #expect(AuthFailure(.expired, "the token has expired").wwwAuthenticate == "Bearer error=\"invalid_token\", error_description=\"the token has expired\"")
    }

    @Test func jwksKeepsOnlyUsableSigningKeys() {
        func set(_ keys: [[(key: String, value: JSONValue)]]) -> [UInt8] {
            Array(JSONValue.object([("keys", .array(keys.map { .object($0) }))]).jsonText.utf8)
        }
        let weak = TestKey(rsaBits: 1024)
        let parsed = JWKS.parse(set([Self.rsa.jwk(kid: "a", alg: "RS256", use: "sig"), Self.rsa.jwk(kid: "enc", use: "enc"),
                                     weak.jwk(kid: "weak"), Self.ec.jwk(kid: "b"), Self.rsa.jwk(kid: "hmac", alg: "HS256")]))!
        #expect(Set(parsed.keys) == ["a", "b", "hmac"])
        #expect(parsed["hmac"]!.algorithmUnsupported)
        #expect(JWKS.parse(Array("[1,2]".utf8)) == nil)
    }

    @Test func base64URLWithAndWithoutPadding() {
        #expect(Base64URL.decode("YWI") == Array("ab".utf8))
        #expect(Base64URL.decode("YWI=") == nil)
        #expect(Base64URL.decode("YWI=", allowPadding: true) == Array("ab".utf8))
        #expect(Base64URL.decode("YQ==", allowPadding: true) == Array("a".utf8))
        #expect(Base64URL.decode("Y+I") == nil)
        #expect(Base64URL.encode(Array("ab?".utf8)) == "YWI_")
    }
}

extension Result where Failure == AuthFailure {
    var failureReason: AuthFailure.Reason? {
        if case .failure(let failure) = self { return failure.reason }
        return nil
    }
}

extension String {
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        guard let range = firstRange(of: target) else { return self }
        return String(self[..<range.lowerBound]) + replacement + String(self[range.upperBound...])
    }
}
