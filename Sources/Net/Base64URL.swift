/// RFC 4648 §5 base64url: list cursors (written unpadded), JWT segments (read unpadded, or padded
/// as the ALB writes its `x-amzn-oidc-data`), JWK numbers.
public enum Base64URL {
    static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// The value of each alphabet byte, 0xFF for bytes outside it.
    static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(index) }
        return table
    }()

    /// Without padding.
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        let bytes = Array(bytes)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var i = 0
        while i < bytes.count {
            let chunk = (UInt32(bytes[i]) << 16) | (i + 1 < bytes.count ? UInt32(bytes[i + 1]) << 8 : 0) | (i + 2 < bytes.count ? UInt32(bytes[i + 2]) : 0)
            let emit = min(4, (bytes.count - i) * 8 / 6 + 1)
            for j in 0..<emit { out.append(alphabet[Int((chunk >> (18 - 6 * UInt32(j))) & 63)]) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ text: String, allowPadding: Bool = false) -> [UInt8]? {
        text.withBorrowedUTF8 { decode($0, allowPadding: allowPadding) }
    }

    /// Nil for a byte outside the alphabet, an impossible length, or padding when not allowed
    /// (padding, when allowed, must make the length a multiple of 4).
    public static func decode(_ bytes: UnsafeBufferPointer<UInt8>, allowPadding: Bool = false) -> [UInt8]? {
        var count = bytes.count
        if allowPadding, count % 4 == 0 {
            var padding = 0
            while padding < 2, count > 0, bytes[count - 1] == UInt8(ascii: "=") { count -= 1; padding += 1 }
        }
        guard count % 4 != 1 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(count * 3 / 4)
        var i = 0
        while i < count {
            let n = min(4, count - i)
            var chunk: UInt32 = 0
            for j in 0..<4 {
                var value: UInt8 = 0
                if j < n {
                    value = values[Int(bytes[i + j])]
                    if value == 0xFF { return nil }
                }
                chunk = chunk << 6 | UInt32(value)
            }
            for j in 0..<(n - 1) { out.append(UInt8((chunk >> (16 - 8 * UInt32(j))) & 0xFF)) }
            i += 4
        }
        return out
    }
}
