import Net

/// Writes responses as HTTP/1.1 bytes into a connection's output buffer.
enum ResponseEncoder {
    /// The status line; the frequent ones are static bytes, not formatted per response.
    private static func appendStatusLine(_ status: HTTPStatus, to head: inout ByteWriter) {
        switch status {
        case .ok: head.append("HTTP/1.1 200 OK\r\n")
        case .created: head.append("HTTP/1.1 201 Created\r\n")
        case .noContent: head.append("HTTP/1.1 204 No Content\r\n")
        case .notFound: head.append("HTTP/1.1 404 Not Found\r\n")
        default: head.append(utf8: "HTTP/1.1 \(status.code) \(status.reason)\r\n")
        }
    }

    /// Appends the response to `output`, the connection's unsent bytes.
    /// - Parameters:
    ///   - output: a `ByteWriter`, so every piece is a copy into room already there (each field
    ///     appended to an array went through the array's generic append, ~90 instructions a piece,
    ///     15 pieces a response; and a head composed in a scratch was copied over once more).
    ///   - connectionHeader: `close`, `keep-alive` (HTTP/1.0 keep-alive must be confirmed,
    ///     RFC 9112 §9.3), or nil.
    ///   - omitBody: true for HEAD (RFC 9110 §9.3.2: same headers, no content) and 204/304.
    ///   - extraHeaders: fields of every response (security headers).
    ///   - exchangeHeaders: fields the request filter added for this request.
    ///   - requestID: written as `X-Request-ID` (straight into the head: appending it to the
    ///     response's header array reallocated that array on every request).
    static func encode(_ response: HTTPResponse, into output: inout ByteWriter, date: [UInt8],
                       connectionHeader: StaticString?, omitBody: Bool, extraHeaders: [UInt8] = [],
                       exchangeHeaders: [UInt8] = [], requestID: String? = nil) {
        // The fixed fields, the security headers and the body, at once: a connection's first
        // response, or one after a large one (`HTTPConnection.flush` lets a large room go),
        // would otherwise grow the room a doubling at a time.
        let status = response.status.code
        let sendsBody = !omitBody && status != 204 && status != 304
        output.reserve(Self.headRoom + extraHeaders.count + exchangeHeaders.count + (sendsBody ? response.body.count : 0))
        appendStatusLine(response.status, to: &output)
        output.append(date)
        // RFC 9110 §8.6: no Content-Length in 1xx and 204 responses; 304 may omit it.
        if status != 204 && status != 304 {
            output.append("Content-Length: ")
            output.appendDecimal(response.body.count)
            output.append("\r\n")
        }
        if let contentType = response.contentType {
            output.append("Content-Type: ")
            output.append(utf8: contentType)
            output.append("\r\n")
        }
        if let location = response.location {
            output.append("Location: ")
            output.append(utf8: location)
            output.append("\r\n")
        }
        if let entityTag = response.entityTag {
            output.append("ETag: ")
            output.append(utf8: entityTag)
            output.append("\r\n")
        }
        for (name, value) in response.headers {
            output.append(utf8: name)
            output.append(": ")
            output.append(utf8: value)
            output.append("\r\n")
        }
        if let requestID {
            output.append("X-Request-ID: ")
            output.append(utf8: requestID)
            output.append("\r\n")
        }
        output.append(extraHeaders)
        if !exchangeHeaders.isEmpty { output.append(exchangeHeaders) }
        if let connectionHeader {
            output.append("Connection: ")
            output.append(connectionHeader)
            output.append("\r\n")
        }
        output.append("\r\n")
        if sendsBody {
            output.append(response.body)
        }
    }

    /// Room for a head's own fields: status line, Date, Content-Length, Content-Type, Location,
    /// ETag, X-Request-ID (~250 bytes for the API's responses); more is grown into.
    static let headRoom = 384

    static let continueResponse: [UInt8] = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)
}
