import Glibc
import Net

extension AttackPatterns {
    static let internalSchemeMarkers = ["gopher://", "dict://", "ldap://", "tftp://", "jar:http", "netdoc:"]
    static let metadataMarkers = ["169.254.169.254", "169.254.170.2", "metadata.google.internal", "metadata.goog", "100.100.100.200", "fd00:ec2::254",
                                   "192.0.0.192", "metadata.packet.net", "rancher-metadata", "metadata.tencentyun.com", "169.254.0.23", "metadata.platformequinix",
                                   "instance-data", "/latest/meta-data", "/latest/user-data", "/latest/api/token", "/computemetadata/v1", "/metadata/instance",
                                   "/metadata/v1", "/openstack/latest", "a9fe:a9fe", "169.254.169.253", "metadata.azure", "/metadata/identity"]
    static let internalSchemes = MarkerSet(internalSchemeMarkers)
    static let metadataNames = MarkerSet(metadataMarkers)

    // MARK: Server-side request forgery to instance metadata

    static func metadataSSRF(_ s: [UInt8]) -> String? {
        if Self.internalSchemes.contains(in: s) { return "internal protocol url" }
        if Self.metadataNames.contains(in: s) { return "metadata endpoint" }
        // Other spellings of 169.254.169.254: 2852039166, 0xa9fea9fe, 0251.0376.0251.0376, 169.254.43518 …
        var i = 0
        while i < s.count {
            let c = s[i]
            guard c >= 0x30 && c <= 0x39, i == 0 || !isWordByte(s[i - 1]) || s[i - 1] == 0x5F else { i += 1; continue }
            var j = i
            while j < s.count && ((s[j] >= 0x30 && s[j] <= 0x39) || (s[j] >= 0x61 && s[j] <= 0x66) || s[j] == 0x78 || s[j] == 0x2E) { j += 1 }
            // Without a dot the address is one number: 10 decimal digits, or 0x… / 0… (hex, octal).
            // UUID segments ("8d2c6d41") are neither, and are not parsed at all.
            let dotted = s[i..<j].contains(0x2E)
            let plausible = dotted || s[i] == 0x30 || (j - i == 10 && s[i..<j].allSatisfy { $0 >= 0x30 && $0 <= 0x39 })
            if j - i >= 8, plausible, let value = IPv4Forms.parse(s[i..<j]), value == 0xA9FE_A9FE || value == 0xA9FE_AA02 { return "metadata address" }
            i = j + 1
        }
        // IPv6 forms embedding it: [::ffff:169.254.169.254], [0:0:0:0:0:ffff:a9fe:a9fe]
        if s.contains(0x5B) {
            var from = 0
            while let open = s[from...].firstIndex(of: 0x5B) {
                from = open + 1
                guard let close = s[from..<min(s.count, from + 46)].firstIndex(of: 0x5D) else { continue }
                if let address = IPAddress(String(decoding: s[from..<close], as: UTF8.self)) {
                    if (address.isIPv4 || address.high == 0 || address.high == 0x0064_ff9b_0000_0000), UInt32(truncatingIfNeeded: address.low) == 0xA9FE_A9FE { return "metadata address" }
                    if address == IPAddress("fd00:ec2::254") { return "metadata address" }
                }
            }
        }
        return nil
    }
}

/// IPv4 in every spelling `inet_aton` accepts: 1–4 parts, each decimal, octal (leading 0) or hex
/// (0x) — the forms SSRF filters miss. One pass, no allocation: it runs on every numeric run of
/// every value (the array-splitting version made 10 of a `GET /todos/{id}`'s 52 allocations).
enum IPv4Forms {
    static func parse(_ text: [UInt8]) -> UInt32? { parse(text[...]) }

    static func parse(_ text: ArraySlice<UInt8>) -> UInt32? {
        var values: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        var count = 0
        var i = text.startIndex
        while true {
            // One part: up to the next dot or the end.
            var end = i
            while end < text.endIndex && text[end] != 0x2E { end += 1 }
            let length = end - i
            guard length > 0, length <= 12, count < 4 else { return nil }
            var value: UInt64 = 0
            if length > 2 && text[i] == 0x30 && text[i + 1] | 0x20 == 0x78 {
                for b in text[(i + 2)..<end] { guard let h = ASCIIDigits.hexValue(b) else { return nil }; value = value * 16 + UInt64(h) }
            } else if length > 1 && text[i] == 0x30 {
                for b in text[(i + 1)..<end] { guard b >= 0x30 && b <= 0x37 else { return nil }; value = value * 8 + UInt64(b - 0x30) }
            } else {
                for b in text[i..<end] { guard b >= 0x30 && b <= 0x39 else { return nil }; value = value * 10 + UInt64(b - 0x30) }
            }
            switch count {
            case 0: values.0 = value
            case 1: values.1 = value
            case 2: values.2 = value
            default: values.3 = value
            }
            count += 1
            if end == text.endIndex { break }
            i = end + 1
        }
        switch count {
        case 1: return values.0 <= 0xFFFF_FFFF ? UInt32(values.0) : nil
        case 2: return values.0 <= 0xFF && values.1 <= 0xFF_FFFF ? UInt32(values.0 << 24 | values.1) : nil
        case 3: return values.0 <= 0xFF && values.1 <= 0xFF && values.2 <= 0xFFFF ? UInt32(values.0 << 24 | values.1 << 16 | values.2) : nil
        default:
            guard values.0 <= 0xFF, values.1 <= 0xFF, values.2 <= 0xFF, values.3 <= 0xFF else { return nil }
            return UInt32(values.0 << 24 | values.1 << 16 | values.2 << 8 | values.3)
        }
    }
}
