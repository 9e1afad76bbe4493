/// Who the client is: the TCP peer, or, when the peer is a trusted proxy (the ALB), the
/// right-most `X-Forwarded-For` address that is not itself a trusted proxy. Left of that the
/// header is whatever the client wrote, so it is never believed (AWS ALB appends the address it
/// saw; a client can prepend anything).
public struct ClientIdentity: Sendable {
    public let trustedProxies: [IPNetwork]

    /// Where an ALB or another proxy of ours lives: the private ranges, loopback, ULA.
    public static let defaultTrustedProxies = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,127.0.0.0/8,::1/128,fc00::/7"

    public init(trustedProxies: [IPNetwork]) {
        self.trustedProxies = trustedProxies
    }

    func isTrusted(_ address: IPAddress) -> Bool {
        trustedProxies.contains { $0.contains(address) }
    }

    /// `forwardedFor`: every `X-Forwarded-For` field value in order (several fields are one list,
    /// RFC 9110 §5.3).
    public func resolve(peer: IPAddress, forwardedFor: [ArraySlice<UInt8>]) -> IPAddress {
        guard !forwardedFor.isEmpty, isTrusted(peer) else { return peer }
        var client = peer
        for field in forwardedFor.reversed() {
            for item in field.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: true).reversed() {
                guard let address = Self.parse(item) else { return client }  // garbage: stop at what we know
                client = address
                if !isTrusted(address) { return address }
            }
        }
        return client
    }

    /// An XFF element: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:443`.
    static func parse(_ item: ArraySlice<UInt8>) -> IPAddress? {
        var text = Substring(decoding: item, as: UTF8.self)
        while text.first == " " || text.first == "\t" { text = text.dropFirst() }
        while text.last == " " || text.last == "\t" { text = text.dropLast() }
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            return IPAddress(text[text.index(after: text.startIndex)..<close])
        }
        if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
            return IPAddress(text[..<colon])
        }
        return IPAddress(text)
    }
}
