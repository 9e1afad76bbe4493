import Net

/// A complete request as handlers see it.
public struct HTTPRequest: Sendable {
    public let head: HTTPRequestHead
    public let body: [UInt8]
    /// Values of the route's `:name` segments, percent-decoded.
    public internal(set) var parameters = RouteParameters()
    /// The matched route pattern (`/todos/:id`), for logs and metric labels; nil when none matched.
    public internal(set) var route: String?
    /// The caller's well-formed `X-Request-ID` or a new id; returned as `X-Request-ID` on the
    /// response and meant for every log line and error body about this request.
    public internal(set) var requestID: String
    /// The client's address as a request filter resolved it (e.g. from `X-Forwarded-For` behind a
    /// trusted proxy); nil means the TCP peer. Used by the access log.
    public var clientIP: String?
    /// The TCP peer (the ALB, behind one): who may vouch for headers such as the ALB's identity
    /// header. Nil only for requests built outside a connection (tests).
    public internal(set) var peer: PeerAddress?
    /// Header field lines (`Name: value\r\n`, already valid) that a request filter adds to this
    /// request's response, whatever answers it (e.g. `RateLimit`). Empty for most requests.
    public var responseFields: [UInt8] = []

    public init(head: HTTPRequestHead, body: [UInt8], requestID: String? = nil) {
        self.head = head
        self.body = body
        self.requestID = requestID ?? RequestID.of(head)
    }

    public var method: HTTPMethod { head.method }
    public var path: Substring { head.path }
}
