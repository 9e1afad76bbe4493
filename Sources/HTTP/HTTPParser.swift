import Glibc
// scripts/fuzz compiles the parser's files and Net's ASCIIText.swift as one module.
#if canImport(Net)
import Net
#endif

/// Incremental HTTP/1.1 request parser (RFC 9112): a pure state machine over bytes, no I/O.
///
/// The caller feeds the bytes it has not yet had consumed, always starting where the last call's
/// `consumed` ended; the parser returns one event and how many bytes it consumed. On partial input
/// it returns `.needMore` and remembers how far it has already scanned (picohttpparser's
/// `last_len`), so a head arriving one byte at a time is still scanned once.
public struct HTTPParser: Sendable {
    public enum Event: Sendable {
        /// Feed more bytes (keep the unconsumed ones and append to them).
        case needMore
        case head(HTTPRequestHead)
        /// Body bytes at this range of the buffer just fed.
        case body(Range<Int>)
        /// The request (head and body) is complete.
        case end
        case error(HTTPParseError)
    }

    enum State: Sendable {
        /// Scanning a head; `lineStart` is where the first incomplete line begins, after `lines`
        /// complete ones (the request line and field lines so far).
        case head(lineStart: Int, skippedEmptyLine: Bool, lines: Int)
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers(bytes: Int)
        case messageEnd
        case failed
    }

    public let limits: HTTPLimits
    var state: State = .head(lineStart: 0, skippedEmptyLine: false, lines: 0)
    var chunkedBodyBytes = 0

    public init(limits: HTTPLimits = HTTPLimits()) {
        self.limits = limits
    }

    /// True between requests: nothing of the next request has been consumed or scanned.
    public var isAtRequestBoundary: Bool {
        if case .head(0, false, _) = state { return true }
        return false
    }

    /// True while a body is being received (for the stalled-body deadline).
    public var isInBody: Bool {
        switch state {
        case .fixedBody, .chunkSize, .chunkData, .chunkDataEnd, .trailers: true
        default: false
        }
    }

    public mutating func parse(_ buffer: UnsafeRawBufferPointer) -> (event: Event, consumed: Int) {
        var consumed = 0
        while true {
            let rest = UnsafeRawBufferPointer(rebasing: buffer[consumed...])
            switch state {
            case .head(let lineStart, let skipped, let lines):
                let (event, used) = parseHead(rest, lineStart: lineStart, skippedEmptyLine: skipped, lines: lines)
                consumed += used
                guard let event else { continue }  // skipped a leading empty line
                return (event, consumed)

            case .fixedBody(let remaining):
                let take = min(remaining, rest.count)
                guard take > 0 else { return (.needMore, consumed) }
                state = remaining == take ? .messageEnd : .fixedBody(remaining: remaining - take)
                return (.body(consumed..<consumed + take), consumed + take)

            case .chunkSize:
                guard let lineEnd = Self.findLineFeed(rest, from: 0, limit: limits.maxChunkLineBytes + 2) else {
                    if rest.count > limits.maxChunkLineBytes + 1 { return fail(.invalidChunkExtension, consumed) }
                    return (.needMore, consumed)
                }
                guard lineEnd > 0, rest[lineEnd - 1] == ASCII.cr else { return fail(.bareLineFeed, consumed) }
                switch Self.parseChunkSize(UnsafeRawBufferPointer(rebasing: rest[0..<lineEnd - 1])) {
                case .failure(let error):
                    return fail(error, consumed)
                case .success(let size):
                    consumed += lineEnd + 1
                    if size == 0 {
                        state = .trailers(bytes: 0)
                    } else {
                        guard size <= limits.maxBodyBytes - chunkedBodyBytes else { return fail(.bodyTooLarge(limit: limits.maxBodyBytes), consumed) }
                        chunkedBodyBytes += size
                        state = .chunkData(remaining: size)
                    }
                }

            case .chunkData(let remaining):
                let take = min(remaining, rest.count)
                guard take > 0 else { return (.needMore, consumed) }
                state = remaining == take ? .chunkDataEnd : .chunkData(remaining: remaining - take)
                return (.body(consumed..<consumed + take), consumed + take)

            case .chunkDataEnd:
                guard rest.count >= 2 else {
                    if rest.count == 1 && rest[0] != ASCII.cr { return fail(.invalidChunkTerminator, consumed) }
                    return (.needMore, consumed)
                }
                guard rest[0] == ASCII.cr, rest[1] == ASCII.lf else { return fail(.invalidChunkTerminator, consumed) }
                consumed += 2
                state = .chunkSize

            case .trailers(let bytesSoFar):
                // Trailer fields are accepted and discarded (RFC 9112 §7.1.2: a recipient may drop them).
                let room = limits.maxHeaderBytes - bytesSoFar
                guard let lineEnd = Self.findLineFeed(rest, from: 0, limit: room) else {
                    if rest.count >= room { return fail(.headerSectionTooLarge, consumed) }
                    return (.needMore, consumed)
                }
                guard lineEnd > 0, rest[lineEnd - 1] == ASCII.cr else { return fail(.bareLineFeed, consumed) }
                if lineEnd == 1 {
                    consumed += 2
                    state = .messageEnd
                    continue
                }
                if case .failure(let error) = Self.fieldLineColon(UnsafeRawBufferPointer(rebasing: rest[0..<lineEnd - 1])) {
                    return fail(error == .invalidFieldName ? .invalidTrailer : error, consumed)
                }
                consumed += lineEnd + 1
                state = .trailers(bytes: bytesSoFar + lineEnd + 1)

            case .messageEnd:
                state = .head(lineStart: 0, skippedEmptyLine: false, lines: 0)
                chunkedBodyBytes = 0
                return (.end, consumed)

            case .failed:
                return (.error(.invalidRequestLine), consumed)
            }
        }
    }

    private mutating func fail(_ error: HTTPParseError, _ consumed: Int) -> (event: Event, consumed: Int) {
        state = .failed
        return (.error(error), consumed)
    }

    // MARK: Head

    /// Returns nil as the event when it consumed a leading empty line and should be called again.
    private mutating func parseHead(_ buffer: UnsafeRawBufferPointer, lineStart: Int, skippedEmptyLine: Bool, lines: Int) -> (Event?, Int) {
        var lineStart = lineStart
        var lines = lines
        while true {
            // The request line may be maxRequestLineBytes plus CRLF; the whole head, through its
            // final LF, at most maxHeaderBytes. Searching exactly that far (not further) makes the
            // verdict independent of how the bytes were split into reads.
            let searchLimit = lineStart == 0 ? limits.maxRequestLineBytes + 2 : limits.maxHeaderBytes - lineStart
            guard let lineFeed = Self.findLineFeed(buffer, from: lineStart, limit: searchLimit) else {
                state = .head(lineStart: lineStart, skippedEmptyLine: skippedEmptyLine, lines: lines)
                if lineStart == 0 && buffer.count > limits.maxRequestLineBytes + 1 {
                    state = .failed
                    return (.error(.requestLineTooLong), 0)
                }
                if buffer.count >= limits.maxHeaderBytes {
                    state = .failed
                    return (.error(.headerSectionTooLarge), 0)
                }
                return (.needMore, 0)
            }
            guard lineFeed > lineStart, buffer[lineFeed - 1] == ASCII.cr else {
                state = .failed
                return (.error(.bareLineFeed), 0)
            }
            let lineLength = lineFeed - 1 - lineStart
            if lineLength == 0 {
                if lineStart == 0 {
                    // RFC 9112 §2.2: ignore at least one empty line before the request line (some
                    // clients send a CRLF after a POST body). One, not an unbounded number.
                    guard !skippedEmptyLine else {
                        state = .failed
                        return (.error(.invalidRequestLine), 0)
                    }
                    state = .head(lineStart: 0, skippedEmptyLine: true, lines: 0)
                    return (nil, 2)
                }
                let headLength = lineFeed + 1
                return finishHead(UnsafeRawBufferPointer(rebasing: buffer[0..<headLength]), fieldLines: lines - 1)
            }
            if lineStart == 0 && lineLength > limits.maxRequestLineBytes {
                state = .failed
                return (.error(.requestLineTooLong), 0)
            }
            lineStart = lineFeed + 1
            lines += 1
        }
    }

    private mutating func finishHead(_ head: UnsafeRawBufferPointer, fieldLines: Int) -> (Event?, Int) {
        switch HTTPHeadParser.parse(head, fieldLines: fieldLines, limits: limits) {
        case .failure(let error):
            state = .failed
            return (.error(error), 0)
        case .success(let parsed):
            if parsed.isChunked {
                state = .chunkSize
            } else if let length = parsed.contentLength, length > 0 {
                state = .fixedBody(remaining: length)
            } else {
                state = .messageEnd
            }
            chunkedBodyBytes = 0
            return (.head(parsed), head.count)
        }
    }

    // MARK: Helpers

    /// Index of the first LF at or after `from`, looking at most `limit` bytes from `from`.
    @inline(__always)
    static func findLineFeed(_ buffer: UnsafeRawBufferPointer, from: Int, limit: Int) -> Int? {
        let count = min(buffer.count - from, limit)
        guard count > 0, let base = buffer.baseAddress else { return nil }
        guard let found = memchr(base + from, Int32(ASCII.lf), count) else { return nil }
        return base.distance(to: UnsafeRawPointer(found))
    }

    /// chunk-size [ chunk-ext ] (RFC 9112 §7.1): 1–16 hex digits, then optionally BWS ";" ... .
    static func parseChunkSize(_ line: UnsafeRawBufferPointer) -> Result<Int, HTTPParseError> {
        var size = 0
        var index = 0
        while index < line.count, let digit = ASCIIDigits.hexValue(line[index]) {
            guard index < 15 else { return .failure(.invalidChunkSize) }  // 15 hex digits fit in Int
            size = size << 4 | Int(digit)
            index += 1
        }
        guard index > 0 else { return .failure(.invalidChunkSize) }
        guard index < line.count else { return .success(size) }
        // Extensions: BWS ";" ... — accepted and ignored; their bytes must still be clean.
        var rest = index
        while rest < line.count, line[rest] == ASCII.space || line[rest] == ASCII.tab { rest += 1 }
        guard rest < line.count, line[rest] == UInt8(ascii: ";") else { return .failure(.invalidChunkSize) }
        for b in line[rest...] where !ASCII.isFieldValueByte(b) { return .failure(.invalidChunkExtension) }
        return .success(size)
    }

    /// Checks one `name: value` line (no CRLF); the index of its colon when valid (the head
    /// parser used to look for it a second time: ~80 instructions a line, callgrind).
    @inline(__always)
    static func fieldLineColon(_ line: UnsafeRawBufferPointer) -> Result<Int, HTTPParseError> {
        guard let first = line.first else { return .failure(.invalidFieldName) }
        if first == ASCII.space || first == ASCII.tab { return .failure(.obsoleteLineFolding) }
        var index = 0
        while index < line.count, ASCII.isToken(line[index]) { index += 1 }
        guard index < line.count else { return .failure(.invalidFieldName) }
        let stop = line[index]
        if stop != ASCII.colon {
            return .failure((stop == ASCII.space || stop == ASCII.tab) ? .whitespaceBeforeColon : .invalidFieldName)
        }
        guard index > 0 else { return .failure(.invalidFieldName) }
        guard ASCII.areFieldValueBytes(UnsafeRawBufferPointer(rebasing: line[(index + 1)...])) else { return .failure(.invalidFieldValue) }
        return .success(index)
    }
}
