import Net

/// Reads an HTTP/1.1 response (RFC 9112) from bytes as they arrive: the status line, the fields,
/// then a body framed by Content-Length, chunked coding, or the end of the connection. Bounded:
/// a head over `maxHeadBytes` or a body over `maxBodyBytes` is an error, not a growing buffer.
/// Pure (no sockets): the client feeds it; tests feed it byte by byte.
public struct HTTPResponseParser {
    public enum Progress: Equatable {
        case needMore
        case complete
    }

    private enum State {
        case head
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case untilClose
        case complete
    }

    let maxHeadBytes: Int
    let maxBodyBytes: Int
    /// A HEAD request's response has no body whatever its fields say (RFC 9110 §9.3.2).
    let isHeadRequest: Bool
    private var state = State.head
    private var buffer: [UInt8] = []
    private var status = 0
    private var headers: [(name: String, value: String)] = []
    private var body: [UInt8] = []

    public init(maxHeadBytes: Int = 16 << 10, maxBodyBytes: Int = 1 << 20, isHeadRequest: Bool = false) {
        self.maxHeadBytes = maxHeadBytes
        self.maxBodyBytes = maxBodyBytes
        self.isHeadRequest = isHeadRequest
    }

    /// The body ends only where the connection does (no Content-Length, not chunked).
    public var isReadingUntilClose: Bool {
        if case .untilClose = state { true } else { false }
    }

    public var response: HTTPClientResponse? {
        guard case .complete = state else { return nil }
        return HTTPClientResponse(status: status, headers: headers, body: body)
    }

    /// Takes the next bytes read from the connection.
    public mutating func feed(_ bytes: some Collection<UInt8>) throws(HTTPClientError) -> Progress {
        buffer.append(contentsOf: bytes)
        return try advance()
    }

    /// The peer closed its side: a body framed by the close ends here; anything else is cut off.
    public mutating func finish() throws(HTTPClientError) -> Progress {
        if case .untilClose = state {
            state = .complete
            return .complete
        }
        if case .complete = state { return .complete }
        throw HTTPClientError(.closed, "the server closed the connection before the response was complete")
    }

    private mutating func advance() throws(HTTPClientError) -> Progress {
        while true {
            switch state {
            case .complete:
                return .complete
            case .head:
                guard let end = Self.find([13, 10, 13, 10], in: buffer) else {
                    if buffer.count > maxHeadBytes { throw HTTPClientError(.tooLarge, "response head over \(maxHeadBytes) bytes") }
                    return .needMore
                }
                if end > maxHeadBytes { throw HTTPClientError(.tooLarge, "response head over \(maxHeadBytes) bytes") }
                try parseHead(buffer[..<end])
                buffer.removeSubrange(..<(end + 4))
                // 1xx responses (100 Continue, 103 Early Hints) precede the final one (RFC 9110 §15.2).
                if (100..<200).contains(status) {
                    headers.removeAll()
                    continue
                }
                state = try bodyFraming()
            case .fixedBody(let remaining):
                let left = try takeBody(remaining)
                guard left == 0 else { state = .fixedBody(remaining: left); return .needMore }
                state = .complete
            case .untilClose:
                try appendBody(buffer[...])
                buffer.removeAll()
                return .needMore
            case .chunkSize:
                guard let end = Self.find([13, 10], in: buffer) else {
                    if buffer.count > 1024 { throw HTTPClientError(.protocolViolation, "chunk size line too long") }
                    return .needMore
                }
                // chunk-size [ chunk-ext ] CRLF (RFC 9112 §7.1); extensions are ignored.
                let line = buffer[..<end].prefix { $0 != UInt8(ascii: ";") && $0 != UInt8(ascii: " ") && $0 != 9 }
                guard !line.isEmpty, line.count <= 15 else { throw HTTPClientError(.protocolViolation, "invalid chunk size") }
                var size = 0
                for byte in line {
                    guard let digit = ASCIIDigits.hexValue(byte) else { throw HTTPClientError(.protocolViolation, "invalid chunk size") }
                    size = size * 16 + Int(digit)
                }
                buffer.removeSubrange(..<(end + 2))
                state = size == 0 ? .trailers : .chunkData(remaining: size)
            case .chunkData(let remaining):
                let left = try takeBody(remaining)
                guard left == 0 else { state = .chunkData(remaining: left); return .needMore }
                state = .chunkDataEnd
            case .chunkDataEnd:
                guard buffer.count >= 2 else { return .needMore }
                guard buffer[0] == 13, buffer[1] == 10 else { throw HTTPClientError(.protocolViolation, "chunk not followed by CRLF") }
                buffer.removeSubrange(..<2)
                state = .chunkSize
            case .trailers:
                // Trailer fields are read and dropped, up to the empty line.
                guard let end = Self.find([13, 10], in: buffer) else {
                    if buffer.count > maxHeadBytes { throw HTTPClientError(.tooLarge, "trailer section too large") }
                    return .needMore
                }
                buffer.removeSubrange(..<(end + 2))
                if end == 0 { state = .complete }
            }
        }
    }

    /// Moves up to `remaining` buffered bytes into the body; returns how many are still to come.
    private mutating func takeBody(_ remaining: Int) throws(HTTPClientError) -> Int {
        let take = min(remaining, buffer.count)
        try appendBody(buffer[..<take])
        buffer.removeSubrange(..<take)
        return remaining - take
    }

    private mutating func appendBody(_ bytes: ArraySlice<UInt8>) throws(HTTPClientError) {
        guard body.count + bytes.count <= maxBodyBytes else {
            throw HTTPClientError(.tooLarge, "response body over \(maxBodyBytes) bytes")
        }
        body.append(contentsOf: bytes)
    }

    private mutating func parseHead(_ head: ArraySlice<UInt8>) throws(HTTPClientError) {
        var lines = head.split(separator: 10, omittingEmptySubsequences: false).map { line in
            line.last == 13 ? line.dropLast() : line
        }
        guard !lines.isEmpty else { throw HTTPClientError(.protocolViolation, "empty response head") }
        // status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 §4)
        let statusLine = lines.removeFirst()
        guard statusLine.count >= 12, statusLine.starts(with: Array("HTTP/1.".utf8)),
              statusLine[statusLine.startIndex + 8] == UInt8(ascii: " ") else {
            throw HTTPClientError(.protocolViolation, "not an HTTP/1.x status line")
        }
        let code = statusLine[(statusLine.startIndex + 9)..<(statusLine.startIndex + 12)]
        var value = 0
        for byte in code {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { throw HTTPClientError(.protocolViolation, "invalid status code") }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        guard value >= 100 else { throw HTTPClientError(.protocolViolation, "invalid status code") }
        status = value
        for line in lines {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex else {
                throw HTTPClientError(.protocolViolation, "malformed header field")
            }
            let name = String(decoding: line[..<colon], as: UTF8.self)
            guard !name.contains(" "), !name.contains("\t") else { throw HTTPClientError(.protocolViolation, "malformed header field") }
            let rawValue = line[(colon + 1)...]
            let trimmed = rawValue.drop { $0 == 32 || $0 == 9 }
            var end = trimmed.endIndex
            while end > trimmed.startIndex, trimmed[end - 1] == 32 || trimmed[end - 1] == 9 { end -= 1 }
            headers.append((name, String(decoding: trimmed[..<end], as: UTF8.self)))
        }
    }

    /// RFC 9112 §6.3: no body for 204, 304 and HEAD; chunked wins over Content-Length; a
    /// Content-Length; else the body runs to the close.
    private func bodyFraming() throws(HTTPClientError) -> State {
        if isHeadRequest || status == 204 || status == 304 { return .complete }
        let response = HTTPClientResponse(status: status, headers: headers, body: [])
        if let coding = response.header("Transfer-Encoding") {
            guard coding.lowercased().split(separator: ",").last?.trimmingSpaces == "chunked" else {
                throw HTTPClientError(.protocolViolation, "unsupported transfer coding")
            }
            return .chunkSize
        }
        let lengths = headers.filter { $0.name.lowercased() == "content-length" }.map(\.value)
        if let first = lengths.first {
            guard lengths.allSatisfy({ $0 == first }), let length = Int(first), length >= 0 else {
                throw HTTPClientError(.protocolViolation, "invalid Content-Length")
            }
            guard length <= maxBodyBytes else { throw HTTPClientError(.tooLarge, "response body over \(maxBodyBytes) bytes") }
            return length == 0 ? .complete : .fixedBody(remaining: length)
        }
        return .untilClose
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        var index = 0
        while index <= haystack.count - needle.count {
            if haystack[index] == needle[0] {
                var match = true
                for offset in 1..<needle.count where haystack[index + offset] != needle[offset] {
                    match = false
                    break
                }
                if match { return index }
            }
            index += 1
        }
        return nil
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var result = self
        while result.first == " " || result.first == "\t" { result.removeFirst() }
        while result.last == " " || result.last == "\t" { result.removeLast() }
        return result
    }
}
