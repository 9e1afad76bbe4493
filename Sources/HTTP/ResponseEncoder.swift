import Net

/// Writes responses as HTTP/1.1 bytes into a connection's output buffer.
enum ResponseEncoder {
    /// The status line; the frequent ones are static bytes, not formatted per response.
    private static func appendStatusLine(_ status: HTTPStatus, to output: inout [UInt8]) {
        let line: StaticString
        switch status {
        case .ok: line = "HTTP/1.1 200 OK\r\n"
        case .created: line = "HTTP/1.1 201 Created\r\n"
        case .noContent: line = "HTTP/1.1 204 No Content\r\n"
        case .notFound: line = "HTTP/1.1 404 Not Found\r\n"
        default:
            output.append(contentsOf: "HTTP/1.1 \(status.code) \(status.reason)\r\n".utf8)
            return
        }
        line.withUTF8Buffer { output.append(contentsOf: $0) }
    }

    /// - Parameters:
    ///   - connectionHeader: `close`, `keep-alive` (HTTP/1.0 keep-alive must be confirmed,
    ///     RFC 9112 §9.3), or nil.
    ///   - omitBody: true for HEAD (RFC 9110 §9.3.2: same headers, no content) and 204/304.
    ///   - extraHeaders: fields of every response (security headers).
    ///   - exchangeHeaders: fields the request filter added for this request.
    ///   - requestID: written as `X-Request-ID` (straight into the output: appending it to the
    ///     response's header array reallocated that array on every request).
    static func encode(_ response: HTTPResponse, into output: inout [UInt8], date: [UInt8],
                       connectionHeader: StaticString?, omitBody: Bool, extraHeaders: [UInt8] = [],
                       exchangeHeaders: [UInt8] = [], requestID: String? = nil) {
        appendStatusLine(response.status, to: &output)
        output.append(contentsOf: date)
        let status = response.status.code
        // RFC 9110 §8.6: no Content-Length in 1xx and 204 responses; 304 may omit it.
        if status != 204 && status != 304 {
            append("Content-Length: ", to: &output)
            ASCIIDigits.appendDecimal(response.body.count, to: &output)
            append("\r\n", to: &output)
        }
        if let contentType = response.contentType {
            append("Content-Type: ", to: &output)
            output.append(contentsOf: contentType.utf8)
            append("\r\n", to: &output)
        }
        for (name, value) in response.headers {
            output.append(contentsOf: name.utf8)
            append(": ", to: &output)
            output.append(contentsOf: value.utf8)
            append("\r\n", to: &output)
        }
        if let requestID {
            append("X-Request-ID: ", to: &output)
            output.append(contentsOf: requestID.utf8)
            append("\r\n", to: &output)
        }
        output.append(contentsOf: extraHeaders)
        if !exchangeHeaders.isEmpty { output.append(contentsOf: exchangeHeaders) }
        if let connectionHeader {
            append("Connection: ", to: &output)
            connectionHeader.withUTF8Buffer { output.append(contentsOf: $0) }
            append("\r\n", to: &output)
        }
        append("\r\n", to: &output)
        if !omitBody && status != 204 && status != 304 {
            output.append(contentsOf: response.body)
        }
    }

    /// Literal bytes, copied at once (a literal's `.utf8` went through the generic sequence append).
    @inline(__always)
    private static func append(_ text: StaticString, to output: inout [UInt8]) {
        text.withUTF8Buffer { output.append(contentsOf: $0) }
    }

    static let continueResponse: [UInt8] = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)
}
