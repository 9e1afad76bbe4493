import Net

/// Limits of one request: every call ends by its deadlines, and a response cannot grow without
/// bound.
public struct HTTPClientLimits: Sendable {
    /// TCP connect (each address tried shares it).
    public var connectTimeout = TimeSpan.seconds(3)
    /// From the start of the call to the last byte of the response: connect, TLS, send, receive.
    public var totalTimeout = TimeSpan.seconds(10)
    /// The largest response body accepted (a secret is at most 64 KiB; JWKS documents are small).
    public var maxResponseBytes = 1 << 20

    public init() {}
}

/// A small HTTP/1.1 client for the service's calls to AWS and identity providers: one request per
/// connection, TLS 1.2+ verified against the system CA store with the host name checked
/// (`TLSStream`), bounded in time and size.
///
/// Blocking: call it from a worker queue, never from an event loop (the callers' refreshers run on
/// their own DispatchQueue). Errors name the host and the failure, never a header or a body.
public struct HTTPClient: Sendable {
    public var limits: HTTPClientLimits

    public init(limits: HTTPClientLimits = HTTPClientLimits()) {
        self.limits = limits
    }

    public func perform(_ request: HTTPClientRequest) throws(HTTPClientError) -> HTTPClientResponse {
        let start = MonotonicTime.now()
        let deadline = start + limits.totalTimeout
        let connectDeadline = min(deadline, start + limits.connectTimeout)
        let url = request.url
        guard request.method.utf8.allSatisfy({ $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }),
              request.headers.allSatisfy({ Self.isFieldSafe($0.name) && Self.isFieldSafe($0.value, allowSpace: true) }) else {
            throw HTTPClientError(.invalidRequest, "the request to \(url.host) has an invalid method or header field")
        }
        let socket = try ClientSocket.connect(host: url.host, port: url.port, deadline: connectDeadline)
        let stream: ClientStream = url.isTLS ? try TLSStream(socket: socket, host: url.host, deadline: deadline) : socket
        try stream.send(request.serialized(), until: deadline)
        var parser = HTTPResponseParser(maxBodyBytes: limits.maxResponseBytes, isHeadRequest: request.method == "HEAD")
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        while true {
            let received = buffer.withUnsafeMutableBytes { raw -> Result<Int, HTTPClientError> in
                do throws(HTTPClientError) { return .success(try stream.receive(into: raw, until: deadline)) } catch { return .failure(error) }
            }
            let count = try received.get()
            // Over TLS the end of the stream is not authenticated (close_notify is not required of
            // servers): a body framed only by it could be cut short on the way unnoticed.
            if count == 0 && url.isTLS && parser.isReadingUntilClose {
                throw HTTPClientError(.protocolViolation, "\(url.host) sent a body without a length over TLS")
            }
            let progress = count == 0 ? try parser.finish() : try parser.feed(buffer[..<count])
            if progress == .complete, let response = parser.response { return response }
        }
    }

    /// No CR, LF or NUL (header injection), and no other control characters; names not empty.
    public static func isFieldSafe(_ text: String, allowSpace: Bool = false) -> Bool {
        if text.isEmpty { return allowSpace }
        return text.utf8.allSatisfy { ($0 >= 0x21 && $0 != 0x7F) || (allowSpace && ($0 == 0x20 || $0 == 0x09)) }
    }
}
