/// An `http://` or `https://` URL as the client needs it: scheme, host, port and the request
/// target. No user info (credentials in URLs end up in logs), no fragment.
public struct HTTPClientURL: Sendable, Equatable, CustomStringConvertible {
    public let isTLS: Bool
    /// A DNS name or an IP literal (IPv6 without its brackets).
    public let host: String
    public let port: Int
    /// The origin-form request target (RFC 9112 §3.2.1): path and query, at least "/".
    public let target: String

    public init(isTLS: Bool, host: String, port: Int? = nil, target: String = "/") {
        self.isTLS = isTLS
        self.host = host
        self.port = port ?? (isTLS ? 443 : 80)
        self.target = target.isEmpty ? "/" : target
    }

    /// Parses `scheme://host[:port][/path][?query]`; nil for anything else.
    public init?(_ text: String) {
        let lower = text.lowercased()
        let rest: Substring
        if lower.hasPrefix("https://") {
            isTLS = true
            rest = text.dropFirst(8)
        } else if lower.hasPrefix("http://") {
            isTLS = false
            rest = text.dropFirst(7)
        } else {
            return nil
        }
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var target = String(rest[authorityEnd...])
        if let hash = target.firstIndex(of: "#") { target = String(target[..<hash]) }
        if target.hasPrefix("?") { target = "/" + target }
        guard !authority.isEmpty, !authority.contains("@"),
              target.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return nil }
                portText = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard !host.isEmpty, host.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        var port = isTLS ? 443 : 80
        if let portText {
            guard let number = Int(portText), (1...65535).contains(number) else { return nil }
            port = number
        }
        self.host = host.lowercased()
        self.port = port
        self.target = target.isEmpty ? "/" : target
    }

    /// The `Host` field (RFC 9110 §7.2): the port only when it is not the scheme's default.
    public var hostField: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return port == (isTLS ? 443 : 80) ? name : "\(name):\(port)"
    }

    public var description: String {
        "\(isTLS ? "https" : "http")://\(hostField)\(target)"
    }
}
