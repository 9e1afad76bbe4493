import Glibc
import Net

/// An IPv4 or IPv6 address as 16 bytes (IPv4 as `::ffff:a.b.c.d`, RFC 4291 §2.5.5.2), so one
/// table and one CIDR check serve both families.
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    public let high: UInt64
    public let low: UInt64

    init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    init(bytes: [UInt8]) {
        var h: UInt64 = 0, l: UInt64 = 0
        if bytes.count == 4 {
            l = 0xFFFF_0000_0000 | UInt64(bytes[0]) << 24 | UInt64(bytes[1]) << 16 | UInt64(bytes[2]) << 8 | UInt64(bytes[3])
        } else if bytes.count == 16 {
            for i in 0..<8 { h = h << 8 | UInt64(bytes[i]) }
            for i in 8..<16 { l = l << 8 | UInt64(bytes[i]) }
        }
        high = h
        low = l
    }

    public init?(_ peer: PeerAddress) {
        guard peer.family != .other else { return nil }
        self.init(bytes: peer.bytes)
    }

    /// Dotted-quad IPv4 or any RFC 4291 IPv6 text (brackets and a zone are not accepted).
    public init?(_ text: some StringProtocol) {
        let text = String(text)
        if text.utf8.count > 45 || text.isEmpty { return nil }
        if text.contains(":") {
            var raw = in6_addr()
            guard inet_pton(AF_INET6, text, &raw) == 1 else { return nil }
            self.init(bytes: withUnsafeBytes(of: raw) { Array($0) })
        } else {
            var raw = in_addr()
            // inet_pton (not inet_aton): only the four-part decimal form, no octal or hex.
            guard inet_pton(AF_INET, text, &raw) == 1 else { return nil }
            self.init(bytes: withUnsafeBytes(of: raw) { Array($0) })
        }
    }

    public var isIPv4: Bool { high == 0 && low >> 32 == 0xFFFF }

    public var isLoopback: Bool {
        isIPv4 ? (low >> 24) & 0xFF == 127 : (high == 0 && low == 1)
    }

    /// Not reachable from the internet: loopback, unspecified, RFC 1918 private, RFC 6598 shared
    /// (carrier-grade NAT), link-local, IPv6 unique-local (fc00::/7) and link-local (fe80::/10).
    /// Docker's bridge gateways (172.17.0.0/16 and up) and VPC addresses are among them.
    public var isInternal: Bool {
        if isIPv4 {
            let a = (low >> 24) & 0xFF, b = (low >> 16) & 0xFF
            return a == 127 || a == 0 || a == 10 || (a == 172 && (16...31).contains(b)) || (a == 192 && b == 168)
                || (a == 100 && (64...127).contains(b)) || (a == 169 && b == 254)
        }
        let top = high >> 48
        return (high == 0 && (low == 1 || low == 0)) || top & 0xFE00 == 0xFC00 || top & 0xFFC0 == 0xFE80
    }

    public var description: String {
        if isIPv4 {
            return "\((low >> 24) & 0xFF).\((low >> 16) & 0xFF).\((low >> 8) & 0xFF).\(low & 0xFF)"
        }
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in 0..<8 { bytes[i] = UInt8((high >> (56 - 8 * UInt64(i))) & 0xFF) }
        for i in 0..<8 { bytes[8 + i] = UInt8((low >> (56 - 8 * UInt64(i))) & 0xFF) }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        bytes.withUnsafeBytes { _ = inet_ntop(AF_INET6, $0.baseAddress, &text, socklen_t(text.count)) }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A CIDR block (`10.0.0.0/8`, `fc00::/7`; a bare address is a /32 or /128).
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    let base: IPAddress
    let prefix: Int  // over the 128-bit form
    public let description: String

    public init?(_ text: some StringProtocol) {
        let text = text.trimmingWhitespace
        let parts = text.split(separator: "/", maxSplits: 1)
        guard let first = parts.first, let address = IPAddress(first) else { return nil }
        let maxBits = address.isIPv4 ? 32 : 128
        var bits = maxBits
        if parts.count == 2 {
            guard let n = Int(parts[1]), (0...maxBits).contains(n) else { return nil }
            bits = n
        }
        prefix = address.isIPv4 ? 96 + bits : bits
        base = Self.mask(address, prefix)
        description = text
    }

    public func contains(_ address: IPAddress) -> Bool {
        Self.mask(address, prefix) == base
    }

    static func mask(_ a: IPAddress, _ prefix: Int) -> IPAddress {
        if prefix <= 0 { return IPAddress(high: 0, low: 0) }
        if prefix >= 128 { return a }
        if prefix <= 64 {
            return IPAddress(high: a.high & (prefix == 64 ? ~0 : ~(~UInt64(0) >> UInt64(prefix))), low: 0)
        }
        return IPAddress(high: a.high, low: a.low & ~(~UInt64(0) >> UInt64(prefix - 64)))
    }

    /// Comma- or space-separated CIDRs; nil (with the bad entry) when one does not parse.
    public static func list(_ text: String) -> Result<[IPNetwork], ListError> {
        var networks: [IPNetwork] = []
        for item in text.split(whereSeparator: { $0 == "," || $0 == " " }) where !item.isEmpty {
            guard let network = IPNetwork(item) else { return .failure(ListError(entry: String(item))) }
            networks.append(network)
        }
        return .success(networks)
    }

    public struct ListError: Error { public let entry: String }
}

