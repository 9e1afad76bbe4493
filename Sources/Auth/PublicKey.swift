import COpenSSL
import JSON
import Net

/// A JWS algorithm this service accepts (RFC 7518 §3): RSA PKCS#1 v1.5, RSA-PSS, ECDSA. `none`
/// and the HMAC ones are not here: an HMAC "key" would be whatever public key an attacker names
/// (algorithm confusion), and `none` signs nothing.
public enum SignatureAlgorithm: String, Sendable, CaseIterable {
    case rs256 = "RS256", rs384 = "RS384", rs512 = "RS512", ps256 = "PS256", es256 = "ES256", es384 = "ES384"

    var digest: OpaquePointer {
        switch self {
        case .rs256, .ps256, .es256: Digests.sha256
        case .rs384, .es384: Digests.sha384
        case .rs512: Digests.sha512
        }
    }

    /// The key type and curve each algorithm needs (RFC 7518 §3.3–3.5).
    func fits(_ kind: PublicKey.Kind) -> Bool {
        switch (self, kind) {
        case (.rs256, .rsa), (.rs384, .rsa), (.rs512, .rsa), (.ps256, .rsa): true
        case (.es256, .ec(.p256)), (.es384, .ec(.p384)): true
        default: false
        }
    }
}

/// The digests, fetched from OpenSSL's default provider once: `EVP_sha256()` and friends make
/// OpenSSL 3 look the implementation up again on every EVP_DigestVerifyInit.
enum Digests {
    nonisolated(unsafe) static let sha256: OpaquePointer = EVP_MD_fetch(nil, "SHA256", nil)
    nonisolated(unsafe) static let sha384: OpaquePointer = EVP_MD_fetch(nil, "SHA384", nil)
    nonisolated(unsafe) static let sha512: OpaquePointer = EVP_MD_fetch(nil, "SHA512", nil)
}

/// A public key OpenSSL can verify with, made from a JWK or a PEM document. Immutable after init;
/// OpenSSL allows concurrent verifications with one EVP_PKEY.
public final class PublicKey: @unchecked Sendable {
    public enum Curve: String, Sendable { case p256 = "P-256", p384 = "P-384" }
    public enum Kind: Sendable, Equatable {
        case rsa(bits: Int)
        case ec(Curve)
    }

    let key: OpaquePointer
    public let kind: Kind

    /// NIST SP 800-131A: RSA keys under 2048 bits are not accepted.
    static let minimumRSABits = 2048

    private init(key: OpaquePointer, kind: Kind) {
        self.key = key
        self.kind = kind
    }

    deinit { EVP_PKEY_free(key) }

    /// From DER SubjectPublicKeyInfo.
    static func fromDER(_ der: [UInt8], kind: Kind) -> PublicKey? {
        der.withUnsafeBufferPointer { buffer -> PublicKey? in
            var pointer: UnsafePointer<UInt8>? = buffer.baseAddress
            guard let key = d2i_PUBKEY(nil, &pointer, buffer.count) else { return nil }
            return PublicKey(key: key, kind: kind)
        }
    }

    /// An RSA (`n`, `e`) or EC (`crv`, `x`, `y`) JWK (RFC 7517, RFC 7518 §6); nil otherwise.
    public static func fromJWK(kty: String, members: [(key: String, value: JSONValue)]) -> PublicKey? {
        func bytes(_ name: String) -> [UInt8]? {
            guard case .string(let text)? = members.first(where: { $0.key == name })?.value else { return nil }
            return Base64URL.decode(text)
        }
        switch kty {
        case "RSA":
            guard let n = bytes("n"), let e = bytes("e"), !e.isEmpty else { return nil }
            let bits = n.drop { $0 == 0 }.count * 8
            guard bits >= minimumRSABits, bits <= 16384 else { return nil }
            return fromDER(DER.rsaPublicKeyInfo(modulus: n, exponent: e), kind: .rsa(bits: bits))
        case "EC":
            guard case .string(let name)? = members.first(where: { $0.key == "crv" })?.value, let curve = Curve(rawValue: name),
                  let x = bytes("x"), let y = bytes("y") else { return nil }
            let size = curve == .p256 ? 32 : 48
            guard x.count == size, y.count == size else { return nil }
            return fromDER(DER.ecPublicKeyInfo(curve: curve == .p256 ? DER.prime256v1 : DER.secp384r1, x: x, y: y), kind: .ec(curve))
        default:
            return nil
        }
    }

    /// A PEM `PUBLIC KEY` (the ALB's key files); EC P-256/P-384 or RSA.
    public static func fromPEM(_ pem: [UInt8]) -> PublicKey? {
        guard pem.count < 16 << 10 else { return nil }
        return pem.withUnsafeBytes { raw -> PublicKey? in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            guard let key = PEM_read_bio_PUBKEY(bio, nil, nil, nil) else { return nil }
            let kind: Kind
            switch EVP_PKEY_get_base_id(key) {
            case EVP_PKEY_RSA:
                let bits = Int(EVP_PKEY_get_bits(key))
                guard bits >= minimumRSABits else { EVP_PKEY_free(key); return nil }
                kind = .rsa(bits: bits)
            case EVP_PKEY_EC:
                switch EVP_PKEY_get_bits(key) {
                case 256: kind = .ec(.p256)
                case 384: kind = .ec(.p384)
                default: EVP_PKEY_free(key); return nil
                }
            default:
                EVP_PKEY_free(key)
                return nil
            }
            return PublicKey(key: key, kind: kind)
        }
    }

    /// Whether `signature` (as the JWS carries it) signs `message` with `algorithm` and this key.
    public func verify(_ algorithm: SignatureAlgorithm, message: UnsafeRawBufferPointer, signature: [UInt8]) -> Bool {
        guard algorithm.fits(kind) else { return false }
        var signature = signature
        switch kind {
        case .ec(let curve):
            // JWS carries r‖s of fixed size; OpenSSL verifies the DER form.
            guard signature.count == (curve == .p256 ? 64 : 96) else { return false }
            signature = DER.ecdsaSignature(raw: signature)
        case .rsa(let bits):
            guard signature.count == (bits + 7) / 8 else { return false }
        }
        guard let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        var keyContext: OpaquePointer?
        guard EVP_DigestVerifyInit(context, &keyContext, algorithm.digest, nil, key) == 1 else { return false }
        if algorithm == .ps256 {
            // RFC 7518 §3.5: MGF1 with the same hash, salt as long as the hash.
            guard copenssl_pkey_ctx_set_pss(keyContext) == 1 else { return false }
        }
        let result = signature.withUnsafeBufferPointer { sig in
            EVP_DigestVerify(context, sig.baseAddress, sig.count, message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count)
        }
        ERR_clear_error()
        return result == 1
    }
}
