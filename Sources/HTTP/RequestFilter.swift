import Net

/// A check every complete request passes before routing (client identity, rate limits, request
/// filtering live above this layer and plug in here). Runs on the connection's loop, so it must
/// not block; it may set `request.clientIP`, and returns a response to send instead of routing
/// (a 403 or 429), or nil to go on.
public struct RequestFilter: Sendable {
    public let inspect: @Sendable (inout HTTPRequest, PeerAddress) -> HTTPResponse?

    public init(_ inspect: @escaping @Sendable (inout HTTPRequest, PeerAddress) -> HTTPResponse?) {
        self.inspect = inspect
    }
}

/// Header fields added to every response the server writes, errors from the parser included
/// (security headers). Rendered once into bytes: adding them costs one copy per response.
public struct StaticResponseHeaders: Sendable {
    public let bytes: [UInt8]

    public init(_ fields: [(name: String, value: String)]) {
        var bytes: [UInt8] = []
        for (name, value) in fields {
            precondition(!name.utf8.contains { !ASCII.isToken($0) }, "invalid header name \(name)")
            precondition(!value.utf8.contains { !ASCII.isFieldValueByte($0) }, "invalid header value for \(name)")
            bytes += Array("\(name): \(value)\r\n".utf8)
        }
        self.bytes = bytes
    }

    public static let none = StaticResponseHeaders([])
}
