/// A request the client sends: one per connection (`Connection: close`); these calls are rare
/// (credentials, secrets, keys), so keep-alive would buy nothing but state.
public struct HTTPClientRequest: Sendable {
    public var method: String
    public var url: HTTPClientURL
    /// Fields besides Host, Content-Length and Connection, which the client writes itself.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(method: String, url: HTTPClientURL, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }

    /// The bytes on the wire (RFC 9112 §3, §6.2).
    func serialized() -> [UInt8] {
        var head = "\(method) \(url.target) HTTP/1.1\r\nHost: \(url.hostField)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if !body.isEmpty || method == "POST" || method == "PUT" { head += "Content-Length: \(body.count)\r\n" }
        head += "Connection: close\r\n\r\n"
        return Array(head.utf8) + body
    }
}

public struct HTTPClientResponse: Sendable {
    public let status: Int
    public let headers: [(name: String, value: String)]
    public let body: [UInt8]

    /// The last field of that name (case-insensitive), trimmed.
    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.last { $0.name.lowercased() == lower }?.value
    }
}

/// Why a request failed. Messages name the host and the cause, never header values or bodies
/// (they carry signatures, tokens and secrets).
public struct HTTPClientError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case invalidRequest, resolve, connect, tls, timeout, protocolViolation, tooLarge, closed
    }
    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
