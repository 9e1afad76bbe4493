/// Turns one complete head (request line, field lines, final CRLF) into an `HTTPRequestHead`,
/// applying the framing rules of RFC 9112 §6 that decide where the body ends.
enum HTTPHeadParser {
    /// `fieldLines`: how many field lines the head has (`HTTPParser` counted them while finding
    /// its end), so their entries take one allocation with the head's bytes.
    static func parse(_ head: UnsafeRawBufferPointer, fieldLines: Int, limits: HTTPLimits) -> Result<HTTPRequestHead, HTTPParseError> {
        // Request line: method SP request-target SP HTTP-version (RFC 9112 §3), single spaces only.
        guard let lineEnd = HTTPParser.findLineFeed(head, from: 0, limit: head.count) else {
            return .failure(.invalidRequestLine)
        }
        let requestLine = UnsafeRawBufferPointer(rebasing: head[0..<lineEnd - 1])
        guard let firstSpace = requestLine.firstIndex(of: ASCII.space), firstSpace > 0 else {
            return .failure(.invalidRequestLine)
        }
        for b in requestLine[0..<firstSpace] where !ASCII.isToken(b) { return .failure(.invalidMethod) }
        let afterMethod = firstSpace + 1
        guard let secondSpace = requestLine[afterMethod...].firstIndex(of: ASCII.space), secondSpace > afterMethod else {
            return .failure(.invalidRequestLine)
        }
        for b in requestLine[afterMethod..<secondSpace] where b <= 0x20 || b >= 0x7F { return .failure(.invalidTarget) }
        let version: HTTPVersion
        switch parseVersion(UnsafeRawBufferPointer(rebasing: requestLine[(secondSpace + 1)...])) {
        case .failure(let error): return .failure(error)
        case .success(let parsed): version = parsed
        }
        let method = HTTPMethod(bytes: UnsafeRawBufferPointer(rebasing: requestLine[0..<firstSpace]))
        let targetBytes = UnsafeRawBufferPointer(rebasing: requestLine[afterMethod..<secondSpace])
        guard targetBytes[0] == UInt8(ascii: "/") || isAbsoluteForm(targetBytes)
                || (targetBytes.count == 1 && targetBytes[0] == UInt8(ascii: "*") && method == .options) else {
            return .failure(.invalidTarget)
        }
        let requestLineFacts = RequestLine(method: method, version: version, targetBytes: targetBytes, fieldsStart: lineEnd + 1)

        // The entries are gathered on the stack (up to `stackEntries`), then copied once behind
        // the head's bytes; a head of more field lines gathers them in an array.
        let capacity = min(max(fieldLines, 0), limits.maxHeaderFields)
        if capacity <= stackEntries {
            return withUnsafeTemporaryAllocation(of: HTTPFields.Entry.self, capacity: stackEntries) {
                parseFields(head, requestLineFacts, limits: limits, into: $0)
            }
        }
        var gathered = [HTTPFields.Entry](repeating: HTTPFields.Entry(nameStart: 0, nameEnd: 0, valueStart: 0, valueEnd: 0), count: capacity)
        return gathered.withUnsafeMutableBufferPointer { parseFields(head, requestLineFacts, limits: limits, into: $0) }
    }

    /// 64 entries of 16 bytes: 1 KiB, within what the standard library always takes on the stack.
    /// A constant, not a stored `static let` (a lazily initialised global), so the temporary
    /// allocation's size is known where it is made.
    static var stackEntries: Int { 64 }

    struct RequestLine {
        let method: HTTPMethod
        let version: HTTPVersion
        let targetBytes: UnsafeRawBufferPointer
        /// Where the first field line begins.
        let fieldsStart: Int
    }

    private static func parseFields(_ head: UnsafeRawBufferPointer, _ requestLine: RequestLine, limits: HTTPLimits,
                                    into entries: UnsafeMutableBufferPointer<HTTPFields.Entry>) -> Result<HTTPRequestHead, HTTPParseError> {
        let version = requestLine.version
        var count = 0
        var framing = Framing()
        var known = KnownFieldSlots()
        var lineStart = requestLine.fieldsStart
        while lineStart < head.count - 2 {
            guard let lf = HTTPParser.findLineFeed(head, from: lineStart, limit: head.count - lineStart) else { break }
            let line = UnsafeRawBufferPointer(rebasing: head[lineStart..<lf - 1])
            guard line.count <= limits.maxFieldLineBytes else { return .failure(.headerFieldTooLarge) }
            let colon: Int
            switch HTTPParser.fieldLineColon(line) {
            case .failure(let error): return .failure(error)
            case .success(let index): colon = index
            }
            // `entries.count` only guards against a miscount: `HTTPParser` counted these lines.
            guard count < limits.maxHeaderFields, count < entries.count else { return .failure(.tooManyHeaderFields) }
            var valueStart = colon + 1
            var valueEnd = line.count
            while valueStart < valueEnd, line[valueStart] == ASCII.space || line[valueStart] == ASCII.tab { valueStart += 1 }
            while valueEnd > valueStart, line[valueEnd - 1] == ASCII.space || line[valueEnd - 1] == ASCII.tab { valueEnd -= 1 }
            let name = UnsafeRawBufferPointer(rebasing: line[0..<colon])
            let value = UnsafeRawBufferPointer(rebasing: line[valueStart..<valueEnd])
            if let error = framing.observe(name: name, value: value) { return .failure(error) }
            if let field = KnownField(name: name) { known.noteFirst(field, at: count) }
            entries[count] = HTTPFields.Entry(
                nameStart: UInt32(lineStart), nameEnd: UInt32(lineStart + colon),
                valueStart: UInt32(lineStart + valueStart), valueEnd: UInt32(lineStart + valueEnd))
            count += 1
            lineStart = lf + 1
        }

        // RFC 9112 §3.2: exactly one Host in HTTP/1.1; at most one in HTTP/1.0.
        if framing.hostCount > 1 { return .failure(.repeatedHost) }
        if version == .http1_1 && framing.hostCount == 0 { return .failure(.missingHost) }
        // RFC 9112 §6.1: Transfer-Encoding with Content-Length is a smuggling attempt; and a 1.0
        // request cannot use transfer codings.
        if framing.transferEncoding != .none {
            if framing.contentLength != nil { return .failure(.contentLengthWithTransferEncoding) }
            if framing.transferEncoding != .chunked || version == .http1_0 { return .failure(.unsupportedTransferEncoding) }
        }
        if let length = framing.contentLength, length > limits.maxBodyBytes { return .failure(.bodyTooLarge(limit: limits.maxBodyBytes)) }
        if framing.unsupportedExpectation && version == .http1_1 { return .failure(.unsupportedExpectation) }

        let keepAlive: Bool
        switch version {
        case .http1_1: keepAlive = !framing.connectionClose
        case .http1_0: keepAlive = framing.connectionKeepAlive && !framing.connectionClose
        }
        let isChunked = framing.transferEncoding == .chunked
        // One allocation of the right size, then two copies (the generic
        // `[UInt8](unsafeUninitializedCapacity:)` looks its storage type up at run time).
        var storage: [UInt8] = []
        storage.reserveCapacity(head.count + count * HTTPFields.entrySize)
        storage.append(contentsOf: head)
        storage.append(contentsOf: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: entries[0..<count])))
        return .success(HTTPRequestHead(
            method: requestLine.method,
            version: version,
            target: String(decoding: requestLine.targetBytes, as: UTF8.self),
            pathBounds: HTTPRequestHead.pathBounds(of: requestLine.targetBytes),
            fields: HTTPFields(storage: storage, byteCount: head.count, count: count, known: known),
            contentLength: isChunked ? nil : framing.contentLength,
            isChunked: isChunked,
            keepAlive: keepAlive,
            expectsContinue: framing.expectsContinue && version == .http1_1))
    }

    static func parseVersion(_ bytes: UnsafeRawBufferPointer) -> Result<HTTPVersion, HTTPParseError> {
        // HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112 §2.3); case-sensitive.
        // Compared byte by byte (the generic `starts(with:)` cost ~250 instructions a request).
        guard bytes.count == 8, bytes[0] == UInt8(ascii: "H"), bytes[1] == UInt8(ascii: "T"), bytes[2] == UInt8(ascii: "T"),
              bytes[3] == UInt8(ascii: "P"), bytes[4] == UInt8(ascii: "/"), bytes[6] == UInt8(ascii: "."),
              isDigit(bytes[5]), isDigit(bytes[7]) else { return .failure(.invalidVersion) }
        if bytes[5] == UInt8(ascii: "1") {
            if bytes[7] == UInt8(ascii: "1") { return .success(.http1_1) }
            if bytes[7] == UInt8(ascii: "0") { return .success(.http1_0) }
        }
        return .failure(.unsupportedVersion)
    }

    static func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }

    static func isAbsoluteForm(_ target: UnsafeRawBufferPointer) -> Bool {
        let lowered = target.prefix(8).map(ASCII.lower)
        return lowered.starts(with: "http://".utf8) || lowered.starts(with: "https://".utf8)
    }
}

/// What the framing-relevant fields said, accumulated over the field lines.
struct Framing {
    enum TransferEncoding { case none, chunked, unsupported }

    var hostCount = 0
    var contentLength: Int?
    var transferEncoding = TransferEncoding.none
    var connectionClose = false
    var connectionKeepAlive = false
    var expectsContinue = false
    var unsupportedExpectation = false

    mutating func observe(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> HTTPParseError? {
        switch name.count {
        case 4 where equalsLowercase(name, "host"):
            hostCount += 1
            if !HostSyntax.isValid(value) { return .invalidHost }
        case 6 where equalsLowercase(name, "expect"):
            if equalsLowercase(value, "100-continue") { expectsContinue = true } else { unsupportedExpectation = true }
        case 10 where equalsLowercase(name, "connection"):
            forEachListElement(value) { token in
                if equalsLowercase(token, "close") { connectionClose = true }
                if equalsLowercase(token, "keep-alive") { connectionKeepAlive = true }
            }
        case 14 where equalsLowercase(name, "content-length"):
            return observeContentLength(value)
        case 17 where equalsLowercase(name, "transfer-encoding"):
            // Only a single "chunked" is understood; "gzip, chunked", "chunked, chunked" or a second
            // Transfer-Encoding line are refused rather than half-understood.
            var elements = 0
            var chunked = false
            forEachListElement(value) { token in
                elements += 1
                chunked = equalsLowercase(token, "chunked")
            }
            if transferEncoding == .none && elements == 1 && chunked {
                transferEncoding = .chunked
            } else {
                transferEncoding = .unsupported
            }
        default:
            break
        }
        return nil
    }

    /// RFC 9112 §6.3: a list of identical values may be taken as one; anything else is an error.
    private mutating func observeContentLength(_ value: UnsafeRawBufferPointer) -> HTTPParseError? {
        var error: HTTPParseError?
        var sawElement = false
        forEachListElement(value) { element in
            sawElement = true
            guard error == nil else { return }
            guard !element.isEmpty, element.count <= 18, element.allSatisfy(HTTPHeadParser.isDigit) else {
                error = .invalidContentLength
                return
            }
            let parsed = element.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
            if let existing = contentLength, existing != parsed { error = .conflictingContentLength }
            contentLength = parsed
        }
        if !sawElement { return .invalidContentLength }
        return error
    }

    /// Its own comparison, not Net's `equalsIgnoringASCIICase`: scripts/fuzz compiles the parser's
    /// files alone, without the Net module.
    private func equalsLowercase(_ bytes: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
        guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = lowercase.utf8Start
        for i in 0..<bytes.count where ASCII.lower(bytes[i]) != expected[i] { return false }
        return true
    }

    /// Calls `body` with each element of a comma-separated list, OWS trimmed; empty elements
    /// are skipped (RFC 9110 §5.6.1).
    private func forEachListElement(_ value: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
        var start = 0
        while start <= value.count {
            var end = start
            while end < value.count, value[end] != UInt8(ascii: ",") { end += 1 }
            var s = start
            var e = end
            while s < e, value[s] == ASCII.space || value[s] == ASCII.tab { s += 1 }
            while e > s, value[e - 1] == ASCII.space || value[e - 1] == ASCII.tab { e -= 1 }
            if e > s { body(UnsafeRawBufferPointer(rebasing: value[s..<e])) }
            start = end + 1
        }
    }
}
