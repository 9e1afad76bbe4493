/// The Host field's grammar (RFC 9110 §7.2, RFC 3986 §3.2.2–3.2.3):
/// `Host = uri-host [ ":" port ]`, `uri-host = IP-literal / IPv4address / reg-name`,
/// `reg-name = *( unreserved / pct-encoded / sub-delims )`, `port = *DIGIT`.
/// RFC 9112 §3.2: a server MUST answer 400 to a Host field with an invalid value. An empty value is
/// valid (a target without an authority).
enum HostSyntax {
    static func isValid(_ value: UnsafeRawBufferPointer) -> Bool {
        guard !value.isEmpty else { return true }
        var hostEnd: Int
        if value[0] == UInt8(ascii: "[") {
            // IP-literal: IPv6address or IPvFuture, both within unreserved / sub-delims / ":".
            guard let close = value.firstIndex(of: UInt8(ascii: "]")), close > 1 else { return false }
            for byte in value[1..<close] where !(isRegNameByte(byte) || byte == UInt8(ascii: ":")) {
                return false
            }
            hostEnd = close + 1
            guard hostEnd == value.count || value[hostEnd] == UInt8(ascii: ":") else { return false }
        } else {
            // The port: the digits at the end, after a colon. Found from the end (the generic
            // `lastIndex(of:)` and a second loop over the port were ~100 instructions a request,
            // callgrind). Without that colon the whole value is the host, where a colon is invalid.
            var portStart = value.count
            while portStart > 0, isDigit(value[portStart - 1]) { portStart -= 1 }
            let hasPort = portStart > 0 && value[portStart - 1] == UInt8(ascii: ":")
            hostEnd = hasPort ? portStart - 1 : value.count
            var i = 0
            while i < hostEnd {
                let byte = value[i]
                if byte == UInt8(ascii: "%") {
                    guard i + 2 < hostEnd, isHexDigit(value[i + 1]), isHexDigit(value[i + 2]) else { return false }
                    i += 3
                    continue
                }
                guard isRegNameByte(byte) else { return false }
                i += 1
            }
            return true
        }
        guard hostEnd < value.count else { return true }
        // An IP-literal's port.
        for byte in value[(hostEnd + 1)...] where !isDigit(byte) { return false }
        return true
    }

    /// unreserved / sub-delims (reg-name, RFC 3986 §3.2.2), from two 64-bit masks: the two
    /// predicates' comparisons were ~16 instructions a byte of every Host (callgrind).
    /// 0x00–0x3F: ! $ & ' ( ) * + , - . 0–9 ; =   0x40–0x7F: A–Z _ a–z ~
    static let regNameBitsLow: UInt64 = 0x2BFF_7FD2_0000_0000
    static let regNameBitsHigh: UInt64 = 0x47FF_FFFE_87FF_FFFE

    @inline(__always) static func isRegNameByte(_ b: UInt8) -> Bool {
        b < 0x40 ? (regNameBitsLow >> UInt64(b)) & 1 != 0 : b < 0x80 && (regNameBitsHigh >> UInt64(b &- 0x40)) & 1 != 0
    }

    @inline(__always) private static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))
            || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "F"))
    }
}
