@testable import Auth
import COpenSSL
import JSON
import Net

/// Keys made and tokens signed here with OpenSSL, for the verifier's unit tests. (The test command
/// also checks the service against tokens PyJWT mints: scripts/auth_drills.py.)
final class TestKey: @unchecked Sendable {
    let pkey: OpaquePointer
    let kind: PublicKey.Kind

    init(rsaBits: Int = 2048) {
        let context = EVP_PKEY_CTX_new_from_name(nil, "RSA", nil)!
        defer { EVP_PKEY_CTX_free(context) }
        EVP_PKEY_keygen_init(context)
        EVP_PKEY_CTX_set_rsa_keygen_bits(context, Int32(rsaBits))
        var key: OpaquePointer?
        EVP_PKEY_keygen(context, &key)
        pkey = key!
        kind = .rsa(bits: rsaBits)
    }

    init(curve: PublicKey.Curve) {
        let context = EVP_PKEY_CTX_new_from_name(nil, "EC", nil)!
        defer { EVP_PKEY_CTX_free(context) }
        EVP_PKEY_keygen_init(context)
        EVP_PKEY_CTX_set_group_name(context, curve.rawValue)
        var key: OpaquePointer?
        EVP_PKEY_keygen(context, &key)
        pkey = key!
        kind = .ec(curve)
    }

    deinit { EVP_PKEY_free(pkey) }

    /// The public half as a JWK's members.
    func jwk(kid: String, alg: String? = nil, use: String? = nil) -> [(key: String, value: JSONValue)] {
        var members: [(key: String, value: JSONValue)] = [("kid", .string(kid))]
        switch kind {
        case .rsa:
            members += [("kty", .string("RSA")), ("n", .string(Base64URL.encode(bignum("n")))), ("e", .string(Base64URL.encode(bignum("e"))))]
        case .ec(let curve):
            var point = [UInt8](repeating: 0, count: 200)
            var length = 0
            EVP_PKEY_get_octet_string_param(pkey, "pub", &point, point.count, &length)
            let size = curve == .p256 ? 32 : 48
            members += [("kty", .string("EC")), ("crv", .string(curve.rawValue)),
                        ("x", .string(Base64URL.encode(point[1...size]))), ("y", .string(Base64URL.encode(point[(size + 1)...(2 * size)])))]
        }
        if let alg { members.append(("alg", .string(alg))) }
        if let use { members.append(("use", .string(use))) }
        return members
    }

    func pem() -> [UInt8] {
        let bio = BIO_new(BIO_s_mem())!
        defer { BIO_free(bio) }
        PEM_write_bio_PUBKEY(bio, pkey)
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = BIO_read(bio, &buffer, Int32(buffer.count))
        return Array(buffer[..<Int(n)])
    }

    private func bignum(_ name: String) -> [UInt8] {
        var value: OpaquePointer?
        EVP_PKEY_get_bn_param(pkey, name, &value)
        defer { BN_free(value) }
        var bytes = [UInt8](repeating: 0, count: Int((BN_num_bits(value) + 7) / 8))
        BN_bn2bin(value, &bytes)
        return bytes
    }

    /// A JWS signature over `input` as the algorithm writes it (ECDSA: raw r‖s).
    func sign(_ algorithm: SignatureAlgorithm, _ input: String) -> [UInt8] {
        let context = EVP_MD_CTX_new()!
        defer { EVP_MD_CTX_free(context) }
        var keyContext: OpaquePointer?
        EVP_DigestSignInit(context, &keyContext, algorithm.digest, nil, pkey)
        if algorithm == .ps256 { copenssl_pkey_ctx_set_pss(keyContext) }
        let message = Array(input.utf8)
        var length = 0
        EVP_DigestSign(context, nil, &length, message, message.count)
        var signature = [UInt8](repeating: 0, count: length)
        EVP_DigestSign(context, &signature, &length, message, message.count)
        signature.removeLast(signature.count - length)
        guard case .ec(let curve) = kind else { return signature }
        return Self.rawECDSA(der: signature, size: curve == .p256 ? 32 : 48)
    }

    /// SEQUENCE { INTEGER r, INTEGER s } → r‖s, each left-padded to `size`.
    static func rawECDSA(der: [UInt8], size: Int) -> [UInt8] {
        var index = 2
        if der[1] & 0x80 != 0 { index += Int(der[1] & 0x7F) }
        func integer() -> [UInt8] {
            let length = Int(der[index + 1])
            let value = Array(der[(index + 2)..<(index + 2 + length)].drop { $0 == 0 })
            index += 2 + length
            return [UInt8](repeating: 0, count: size - value.count) + value
        }
        return integer() + integer()
    }
}

/// A compact JWS from header and claims JSON text.
func token(header: String, claims: String, key: TestKey, algorithm: SignatureAlgorithm, padded: Bool = false) -> String {
    func encode(_ bytes: [UInt8]) -> String {
        var text = Base64URL.encode(bytes)
        if padded { while text.utf8.count % 4 != 0 { text += "=" } }
        return text
    }
    let input = encode(Array(header.utf8)) + "." + encode(Array(claims.utf8))
    return input + "." + encode(key.sign(algorithm, input))
}

struct StaticKeys: VerificationKeys {
    let keys: [String: VerificationKey]
    func key(for kid: String) -> VerificationKey? { keys[kid] }
}

extension JSONValue {
    /// Compact JSON text (tests only: strings here need no escaping beyond quotes).
    var jsonText: String {
        switch self {
        case .null: "null"
        case .bool(let value): value ? "true" : "false"
        case .number(let digits): digits
        case .string(let text): "\"" + text.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"") + "\""
        case .array(let values): "[" + values.map(\.jsonText).joined(separator: ",") + "]"
        case .object(let members): "{" + members.map { JSONValue.string($0.key).jsonText + ":" + $0.value.jsonText }.joined(separator: ",") + "}"
        }
    }
}
