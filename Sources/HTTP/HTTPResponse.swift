import Observability

/// A response before encoding. The body is complete bytes: every response is framed with
/// Content-Length (the API's bodies are small and built in memory).
public struct HTTPResponse: Sendable {
    public var status: HTTPStatus
    /// Kept apart from `headers` so the common response needs no header array at all.
    public var contentType: String?
    public var headers: [(name: String, value: String)]
    /// `ETag` and `Location`, the fields the API sets on most of its responses, kept apart from
    /// `headers` like `contentType`: an array of (name, value) tuples is destroyed through the
    /// runtime's generic tuple witness, ~500 instructions a response with two fields (callgrind).
    public var entityTag: String?
    public var location: String?
    public var body: [UInt8]
    /// Who made the request, when the application authenticated it: for the access log's
    /// `userId`, never sent.
    public var userID: String?

    // Inlinable, both: called from other modules for every response, and out of line the call
    // moved each field once more (+265 instructions a `GET /health`, callgrind).
    @inlinable
    public init(status: HTTPStatus, contentType: String? = nil, headers: [(name: String, value: String)] = [],
                entityTag: String? = nil, location: String? = nil, body: [UInt8] = []) {
        self.status = status
        self.contentType = contentType
        self.headers = headers
        self.entityTag = entityTag
        self.location = location
        self.body = body
    }

    @inlinable
    public static func json(_ status: HTTPStatus, _ body: [UInt8], headers: [(name: String, value: String)] = [],
                            entityTag: String? = nil, location: String? = nil) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "application/json", headers: headers, entityTag: entityTag, location: location, body: body)
    }

    /// An RFC 9457 problem document: `{"type":...,"title":...,"status":...,"detail":...,"requestId":...}`
    /// and whatever `members` appends (each starting with a comma). The one renderer of problem
    /// documents: the HTTP layer's own errors and the API's use it alike.
    public static func problem(_ status: HTTPStatus, detail: String, requestID: String? = nil, type: StaticString = "about:blank",
                               headers: [(name: String, value: String)] = [],
                               members: (inout JSONWriter) -> Void = { _ in }) -> HTTPResponse {
        var json = JSONWriter(capacity: 256)
        json.raw("{\"type\":")
        json.string(type.description)
        json.raw(",\"title\":")
        json.string(status.reason)
        json.raw(",\"status\":")
        json.integer(status.code)
        json.raw(",\"detail\":")
        json.string(detail)
        if let requestID {
            json.raw(",\"requestId\":")
            json.string(requestID)
        }
        members(&json)
        json.raw("}")
        return HTTPResponse(status: status, contentType: "application/problem+json", headers: headers, body: json.take())
    }
}
