import Observability

/// A response before encoding. The body is complete bytes: every response is framed with
/// Content-Length (the API's bodies are small and built in memory).
public struct HTTPResponse: Sendable {
    public var status: HTTPStatus
    /// Kept apart from `headers` so the common response needs no header array at all.
    public var contentType: String?
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// Who made the request, when the application authenticated it: for the access log's
    /// `userId`, never sent.
    public var userID: String?

    public init(status: HTTPStatus, contentType: String? = nil, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.status = status
        self.contentType = contentType
        self.headers = headers
        self.body = body
    }

    public static func json(_ status: HTTPStatus, _ body: [UInt8], headers: [(name: String, value: String)] = []) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "application/json", headers: headers, body: body)
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
