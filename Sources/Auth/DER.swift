/// Just enough DER (X.690) to hand OpenSSL public keys and ECDSA signatures in the forms it reads:
/// a SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) from a JWK's numbers, and an ECDSA-Sig-Value
/// (RFC 3279 §2.2.3) from a JWS's raw r‖s (RFC 7518 §3.4).
enum DER {
    static func length(_ count: Int) -> [UInt8] {
        if count < 0x80 { return [UInt8(count)] }
        var bytes: [UInt8] = []
        var rest = count
        while rest > 0 {
            bytes.insert(UInt8(rest & 0xFF), at: 0)
            rest >>= 8
        }
        return [0x80 | UInt8(bytes.count)] + bytes
    }

    static func element(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] {
        [tag] + length(content.count) + content
    }

    static func sequence(_ parts: [UInt8]...) -> [UInt8] { element(0x30, parts.flatMap { $0 }) }

    /// A non-negative INTEGER from big-endian magnitude bytes: leading zeros dropped, one 0x00
    /// added when the high bit is set.
    static func unsignedInteger(_ magnitude: some Collection<UInt8>) -> [UInt8] {
        var bytes = Array(magnitude.drop { $0 == 0 })
        if bytes.isEmpty { bytes = [0] }
        if bytes[0] & 0x80 != 0 { bytes.insert(0, at: 0) }
        return element(0x02, bytes)
    }

    static func bitString(_ bytes: [UInt8]) -> [UInt8] { element(0x03, [0] + bytes) }

    static let null: [UInt8] = [0x05, 0x00]
    /// 1.2.840.113549.1.1.1
    static let rsaEncryption: [UInt8] = [0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01]
    /// 1.2.840.10045.2.1
    static let ecPublicKey: [UInt8] = [0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01]
    /// 1.2.840.10045.3.1.7 (P-256)
    static let prime256v1: [UInt8] = [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]
    /// 1.3.132.0.34 (P-384)
    static let secp384r1: [UInt8] = [0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22]

    static func rsaPublicKeyInfo(modulus: [UInt8], exponent: [UInt8]) -> [UInt8] {
        sequence(sequence(rsaEncryption, null), bitString(sequence(unsignedInteger(modulus), unsignedInteger(exponent))))
    }

    static func ecPublicKeyInfo(curve: [UInt8], x: [UInt8], y: [UInt8]) -> [UInt8] {
        sequence(sequence(ecPublicKey, curve), bitString([0x04] + x + y))
    }

    /// r‖s (each `half` bytes) as SEQUENCE { INTEGER r, INTEGER s }.
    static func ecdsaSignature(raw: [UInt8]) -> [UInt8] {
        let half = raw.count / 2
        return sequence(unsignedInteger(raw[..<half]), unsignedInteger(raw[half...]))
    }
}
