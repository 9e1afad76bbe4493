/// A complete request as handlers see it.
public struct HTTPRequest: Sendable {
    public let head: HTTPRequestHead
    public let body: [UInt8]
    /// Values of the route's `:name` segments, percent-decoded.
    public internal(set) var parameters: [String: String] = [:]
    /// The matched route pattern (`/todos/:id`), for logs and metric labels; nil when none matched.
    public internal(set) var route: String?

    public init(head: HTTPRequestHead, body: [UInt8]) {
        self.head = head
        self.body = body
    }

    public var method: HTTPMethod { head.method }
    public var path: Substring { head.path }
}
