@testable import Auth
import Net
import Testing

@Suite struct ALBTokenVerifierTests {
    static let key = TestKey(curve: .p256)
    static let arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/todo/50dc6c495c0c9188"
    static let now: Int64 = 1_764_979_200
    let keys = StaticKeys(keys: ["2f3e6a10-1b5f-4c1e-9c39-4c4a9c0b1f0e": VerificationKey(key: PublicKey.fromPEM(key.pem())!, algorithm: .es256)])
    let verifier = ALBTokenVerifier(loadBalancerARN: arn)

    func albToken(signer: String = arn, exp: Int64 = now + 60, sub: String = "alb-user") -> String {
        let header = "{\"typ\":\"JWT\",\"kid\":\"2f3e6a10-1b5f-4c1e-9c39-4c4a9c0b1f0e\",\"alg\":\"ES256\",\"iss\":\"https://idp.example\",\"client\":\"c\",\"signer\":\"\(signer)\",\"exp\":\(exp)}"
        return token(header: header, claims: "{\"sub\":\"\(sub)\",\"email\":\"a@example.com\",\"exp\":\(exp),\"iss\":\"https://idp.example\"}",
                     key: Self.key, algorithm: .es256, padded: true)
    }

    @Test func paddedTokensFromTheLoadBalancerVerify() throws {
        let jws = albToken()
        #expect(jws.contains("="), "the segments carry padding, as the ALB writes them")
        #expect(try verifier.verify(token: jws, keys: keys, now: Self.now).get().owner == "alb-user")
    }

    @Test func theSignerExpiryAndSignatureAreChecked() {
        #expect(verifier.verify(token: albToken(signer: Self.arn + "x"), keys: keys, now: Self.now).failureReason == .wrongSigner)
        #expect(verifier.verify(token: albToken(exp: Self.now - 60), keys: keys, now: Self.now).failureReason == .expired)
        var parts = albToken().split(separator: ".").map(String.init)
        parts[1] = Base64URL.encode(Array("{\"sub\":\"admin\",\"exp\":\(Self.now + 60)}".utf8))
        #expect(verifier.verify(token: parts.joined(separator: "."), keys: keys, now: Self.now).failureReason == .badSignature)
        guard case .failure(let unknown) = verifier.verify(token: albToken(), keys: StaticKeys(keys: [:]), now: Self.now) else {
            Issue.record("a token of an unknown key was accepted"); return
        }
        #expect(unknown.reason == .unknownKey && unknown.kid == "2f3e6a10-1b5f-4c1e-9c39-4c4a9c0b1f0e")
    }

    @Test func kidsAreSafeToPutInAURL() {
        #expect(ALBKeyStore.isValidKid("2f3e6a10-1b5f-4c1e-9c39-4c4a9c0b1f0e"))
        #expect(!ALBKeyStore.isValidKid("../../etc/passwd"))
        #expect(!ALBKeyStore.isValidKid("a/b"))
        #expect(!ALBKeyStore.isValidKid(""))
    }

    @Test func onlyTheLoadBalancerIsBelieved() throws {
        let authenticator = Authenticator(mode: .alb(verifier, ALBKeyStore(source: .directory("/nonexistent"))), clock: { Self.now })
        let jws = albToken()
        let untrusted = authenticator.authenticate(authorization: nil, albData: jws, trustedPeer: false)
        guard case .failure(let failure) = untrusted else { Issue.record("an untrusted peer's header was believed"); return }
        #expect(failure.reason == .untrustedProxy)
        guard case .failure(let missing) = authenticator.authenticate(authorization: nil, albData: nil, trustedPeer: true) else {
            Issue.record("no header was accepted"); return
        }
        #expect(missing.reason == .missing)
    }
}
