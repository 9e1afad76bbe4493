/// A response before encoding. The body is complete bytes: every response is framed with
/// Content-Length (the API's bodies are small and built in memory).
public struct HTTPResponse: Sendable {
    public var status: HTTPStatus
    /// Kept apart from `headers` so the common response needs no header array at all.
    public var contentType: String?
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(status: HTTPStatus, contentType: String? = nil, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.status = status
        self.contentType = contentType
        self.headers = headers
        self.body = body
    }

    public static func json(_ status: HTTPStatus, _ body: [UInt8], headers: [(name: String, value: String)] = []) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "application/json", headers: headers, body: body)
    }

    /// An RFC 9457 problem document: `{"type":"about:blank","title":...,"status":...,"detail":...}`.
    public static func problem(_ status: HTTPStatus, detail: String, requestID: String? = nil,
                               headers: [(name: String, value: String)] = []) -> HTTPResponse {
        var body = #"{"type":"about:blank","title":"#
        JSONString.append(status.reason, to: &body)
        body += #","status":\#(status.code),"detail":"#
        JSONString.append(detail, to: &body)
        if let requestID {
            body += #","requestId":"#
            JSONString.append(requestID, to: &body)
        }
        body += "}"
        return HTTPResponse(status: status, contentType: "application/problem+json", headers: headers, body: Array(body.utf8))
    }
}

/// JSON string escaping (RFC 8259 §7) for the few JSON bodies the HTTP layer writes itself.
public enum JSONString {
    public static func append(_ text: String, to output: inout String) {
        output += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F || scalar.value == 0x2028 || scalar.value == 0x2029:
                let hex = String(scalar.value, radix: 16)
                output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: output.unicodeScalars.append(scalar)
            }
        }
        output += "\""
    }
}
