import Testing
@testable import HTTP

/// Requests the parser must accept, each checked whole and split at every byte boundary.
let validRequests: [(name: String, raw: String, requests: Int, lastBody: String)] = [
    ("simple GET", "GET /health HTTP/1.1\r\nHost: a\r\n\r\n", 1, ""),
    ("HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", 1, ""),
    ("content-length body", "POST /todos HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", 1, "hello"),
    ("identical content-length list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc", 1, "abc"),
    ("chunked with extension and trailer",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n",
     1, "hello world"),
    ("chunked upper-case hex", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n", 1, "0123456789"),
    ("pipelined", "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\nPOST /c HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok", 3, "ok"),
    ("leading empty line", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 1, ""),
    ("obs-text and tabs in value", "GET / HTTP/1.1\r\nHost: a\r\nX-Note: caf\u{e9}\tok \r\n\r\n", 1, ""),
    ("absolute-form", "GET http://example.com/health?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n", 1, ""),
    ("OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 1, ""),
    ("expect 100-continue", "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx", 1, "x"),
    ("empty header value", "GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n", 1, ""),
    ("Host with port", "GET / HTTP/1.1\r\nHost: api.example.com:8000\r\n\r\n", 1, ""),
    ("Host IPv6 literal", "GET / HTTP/1.1\r\nHost: [::1]:8000\r\n\r\n", 1, ""),
    ("Host empty", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 1, ""),
    ("Host pct-encoded and sub-delims", "GET / HTTP/1.1\r\nHost: a%2Db!$&'()*+,;=~_\r\n\r\n", 1, ""),
]

/// Requests the parser must refuse, with the error it must give.
let invalidRequests: [(name: String, raw: String, error: HTTPParseError)] = [
    ("CL and TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", .contentLengthWithTransferEncoding),
    ("differing CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", .conflictingContentLength),
    ("differing CL list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\n", .conflictingContentLength),
    ("negative CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", .invalidContentLength),
    ("CL with sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n", .invalidContentLength),
    ("huge CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", .invalidContentLength),
    ("empty CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", .invalidContentLength),
    ("gzip TE", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", .unsupportedTransferEncoding),
    ("gzip, chunked TE", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", .unsupportedTransferEncoding),
    ("TE twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", .unsupportedTransferEncoding),
    ("TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", .unsupportedTransferEncoding),
    ("obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", .obsoleteLineFolding),
    ("space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", .whitespaceBeforeColon),
    ("NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\u{0}c\r\n\r\n", .invalidFieldValue),
    ("CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", .invalidFieldValue),
    ("DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\u{7f}\r\n\r\n", .invalidFieldValue),
    ("bad name byte", "GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n", .invalidFieldName),
    ("empty name", "GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", .invalidFieldName),
    ("missing Host", "GET / HTTP/1.1\r\n\r\n", .missingHost),
    ("repeated Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", .repeatedHost),
    ("Host with a space", "GET / HTTP/1.1\r\nHost: bad host\r\n\r\n", .invalidHost),
    ("Host with a path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", .invalidHost),
    ("Host with userinfo", "GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", .invalidHost),
    ("Host port not digits", "GET / HTTP/1.1\r\nHost: a:80x\r\n\r\n", .invalidHost),
    ("Host two colons", "GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n", .invalidHost),
    ("Host bad pct-encoding", "GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", .invalidHost),
    ("Host unclosed IPv6", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", .invalidHost),
    ("Host junk after IPv6", "GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", .invalidHost),
    ("bare LF", "GET / HTTP/1.1\nHost: a\n\n", .bareLineFeed),
    ("bare LF in fields", "GET / HTTP/1.1\r\nHost: a\n\r\n", .bareLineFeed),
    ("two spaces in request line", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", .invalidRequestLine),
    ("no version", "GET /\r\nHost: a\r\n\r\n", .invalidRequestLine),
    ("lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", .invalidVersion),
    ("HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", .unsupportedVersion),
    ("HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", .unsupportedVersion),
    ("bad method byte", "G@T / HTTP/1.1\r\nHost: a\r\n\r\n", .invalidMethod),
    ("target without slash", "GET health HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
    ("control byte in target", "GET /a\u{1}b HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
    ("two leading empty lines", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", .invalidRequestLine),
    ("bad chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", .invalidChunkSize),
    ("chunk size overflow", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", .invalidChunkSize),
    ("chunk without CRLF after data", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY", .invalidChunkTerminator),
    ("unsupported expectation", "GET / HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n", .unsupportedExpectation),
]

@Suite struct HTTPParserTests {
    @Test(arguments: validRequests.map(\.name))
    func acceptsValidRequestSplitAnywhere(_ name: String) {
        let fixture = validRequests.first { $0.name == name }!
        let bytes = Array(fixture.raw.utf8)
        let whole = parse([bytes])
        #expect(whole.error == nil)
        #expect(whole.requests.count == fixture.requests)
        #expect(whole.leftover == 0)
        #expect(whole.requests.last.map { String(decoding: $0.body, as: UTF8.self) } == fixture.lastBody)
        for chunks in splits(bytes) {
            #expect(parse(chunks) == whole, "split \(chunks.map(\.count))")
        }
    }

    @Test(arguments: invalidRequests.map(\.name))
    func refusesInvalidRequestSplitAnywhere(_ name: String) {
        let fixture = invalidRequests.first { $0.name == name }!
        let bytes = Array(fixture.raw.utf8)
        #expect(parse([bytes]).error == fixture.error)
        for chunks in splits(bytes) {
            #expect(parse(chunks).error == fixture.error, "split \(chunks.map(\.count))")
        }
    }

    @Test func headFieldsAndFraming() throws {
        let outcome = parse("GET /todos/1?limit=5 HTTP/1.1\r\nHost: api\r\nX-Request-ID: abc\r\nx-request-id: def\r\nConnection: close\r\n\r\n")
        let request = try #require(outcome.requests.first)
        #expect(request.method == "GET")
        #expect(request.target == "/todos/1?limit=5")
        #expect(request.fields == ["Host: api", "X-Request-ID: abc", "x-request-id: def", "Connection: close"])
        #expect(request.keepAlive == false)
    }

    @Test func headLookupIsCaseInsensitive() throws {
        var parser = HTTPParser()
        let bytes = Array("GET /a/b?q=1 HTTP/1.1\r\nHOST: x\r\nX-Id: 1\r\nx-id: 2\r\n\r\n".utf8)
        let (event, _) = bytes.withUnsafeBytes { parser.parse($0) }
        guard case .head(let head) = event else { Issue.record("no head"); return }
        #expect(head.fields["host"] == "x")
        #expect(head.fields.values("X-ID") == ["1", "2"])
        #expect(head.fields["missing"] == nil)
        #expect(head.path == "/a/b")
        #expect(head.query == "q=1")
    }

    /// The known fields' slots give what a lookup by name gives: the first line of that name, in
    /// any case, for every known field, present or not; and a head of more lines than the slots
    /// can number still finds them (by name).
    @Test func knownFieldsAreTheFirstLineOfTheirName() throws {
        func head(_ fieldLines: String, limits: HTTPLimits = HTTPLimits()) throws -> HTTPRequestHead {
            var parser = HTTPParser(limits: limits)
            let bytes = Array("POST /todos HTTP/1.1\r\nHost: x\r\n\(fieldLines)\r\n".utf8)
            let (event, _) = bytes.withUnsafeBytes { parser.parse($0) }
            guard case .head(let head) = event else { throw HTTPParseError.invalidRequestLine }
            return head
        }
        let mixed = try head("""
            CONTENT-type: application/json\r\nUser-Agent: a\r\nuser-agent: b\r\nX-Request-Id: r1\r\n\
            if-none-match: "1"\r\nIdempotency-Key: k\r\nX-Amzn-Trace-Id: Root=1\r\nIf-Match: "2"\r\n\
            authorization: Bearer t\r\nX-Amzn-Oidc-Data: d\r\nX-Request-IdX: no\r\nContent-Length: 0\r\n\
            x-forwar_ed-proto: no\r\nX-Forwarded-For: 192.0.2.1\r\nX-FORWARDED-PROTO: https\r\n
            """)
        let none = try head("Accept: */*\r\n")
        for field in KnownField.allCases {
            let byName = field.name.withUTF8Buffer { String(decoding: $0, as: UTF8.self) }
            #expect(mixed.fields[field] == mixed.fields[byName], "\(byName)")
            #expect(mixed.fields[field] != nil, "\(byName)")
            #expect(mixed.fields.rawValue(field).map { String(decoding: $0, as: UTF8.self) } == mixed.fields[byName], "\(byName)")
            #expect(none.fields[field] == nil && none.fields.rawValue(field) == nil, "\(byName)")
        }
        #expect(mixed.fields[.userAgent] == "a")
        #expect(mixed.fields[.contentType] == "application/json")
        // A 17-byte name that differs only in its middle byte (the one the two words skip).
        #expect(mixed.fields[.forwardedProto] == "https")

        var limits = HTTPLimits()
        limits.maxHeaderFields = 400
        limits.maxHeaderBytes = 64 * 1024
        let filler = (0..<300).map { "X-Filler-\($0): \($0)\r\n" }.joined()
        let long = try head(filler + "User-Agent: late\r\n", limits: limits)
        #expect(long.fields.count > KnownFieldSlots.maxEntries)
        #expect(long.fields[.userAgent] == "late")
        #expect(long.fields.rawValue(.contentType) == nil)
    }

    @Test func keepAliveRules() {
        #expect(parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n").requests.first?.keepAlive == true)
        #expect(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n").requests.first?.keepAlive == false)
        #expect(parse("GET / HTTP/1.0\r\n\r\n").requests.first?.keepAlive == false)
        #expect(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").requests.first?.keepAlive == true)
        // RFC 9110 §10.1.1: 100-continue is ignored for HTTP/1.0.
        #expect(parse("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx").requests.first?.expectsContinue == false)
        #expect(parse("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nx").requests.first?.expectsContinue == true)
    }

    @Test func requestLineLimitGives414() {
        var limits = HTTPLimits()
        limits.maxRequestLineBytes = 64
        let longTarget = "/" + String(repeating: "a", count: 100)
        #expect(parse("GET \(longTarget) HTTP/1.1\r\nHost: a\r\n\r\n", limits: limits).error == .requestLineTooLong)
        // Detected before the line ends: a client streaming an endless line is stopped early.
        #expect(parse("GET \(longTarget)", limits: limits).error == .requestLineTooLong)
        // Exactly at the limit is fine.
        let exact = "GET /" + String(repeating: "a", count: 64 - 14) + " HTTP/1.1"
        #expect(exact.utf8.count == 64)
        #expect(parse(exact + "\r\nHost: a\r\n\r\n", limits: limits).requests.count == 1)
    }

    @Test func headerSectionLimitsGive431() {
        var limits = HTTPLimits()
        limits.maxHeaderBytes = 256
        let big = "GET / HTTP/1.1\r\nHost: a\r\nX-Big: \(String(repeating: "b", count: 300))\r\n\r\n"
        #expect(parse(big, limits: limits).error == .headerSectionTooLarge)
        #expect(parse(String(big.prefix(280)), limits: limits).error == .headerSectionTooLarge)

        // One field over 16 KiB (the ALB's per-field limit) within the section's 32 KiB: 431.
        let field = "GET / HTTP/1.1\r\nHost: a\r\nX-Big: \(String(repeating: "b", count: 16 * 1024))\r\n\r\n"
        #expect(parse(field).error == .headerFieldTooLarge)
        let justUnder = "GET / HTTP/1.1\r\nHost: a\r\nX-Big: \(String(repeating: "b", count: 16 * 1024 - 7))\r\n\r\n"
        #expect(parse(justUnder).requests.count == 1)

        let fields = (0..<101).map { "X-F\($0): v\r\n" }.joined()
        #expect(parse("GET / HTTP/1.1\r\nHost: a\r\n\(fields)\r\n").error == .tooManyHeaderFields)
        let hundred = (0..<99).map { "X-F\($0): v\r\n" }.joined()
        #expect(parse("GET / HTTP/1.1\r\nHost: a\r\n\(hundred)\r\n").requests.count == 1)
    }

    /// Found by the fuzzer: the verdict at the head limit must not depend on how reads split it.
    @Test func headLimitIsExactWhateverTheSplit() {
        var limits = HTTPLimits()
        limits.maxHeaderBytes = 64
        let prefix = "GET / HTTP/1.1\r\nHost: a\r\nX: "
        let exact = prefix + String(repeating: "v", count: 64 - prefix.utf8.count - 4) + "\r\n\r\n"
        #expect(exact.utf8.count == 64)
        let over = prefix + String(repeating: "v", count: 64 - prefix.utf8.count - 3) + "\r\n\r\n"
        for chunks in splits(Array(exact.utf8)) {
            #expect(parse(chunks, limits: limits).requests.count == 1)
        }
        for chunks in splits(Array(over.utf8)) {
            #expect(parse(chunks, limits: limits).error == .headerSectionTooLarge)
        }
    }

    @Test func bodyLimitGives413BeforeTheBody() {
        var limits = HTTPLimits()
        limits.maxBodyBytes = 10
        // Refused at the head: nothing of the body is needed.
        #expect(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n", limits: limits).error == .bodyTooLarge(limit: limits.maxBodyBytes))
        #expect(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789", limits: limits).requests.count == 1)
        // Chunked: refused when the sum of chunk sizes passes the limit.
        let chunked = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\n"
        #expect(parse(chunked, limits: limits).error == .bodyTooLarge(limit: limits.maxBodyBytes))
    }

    @Test func partialInputIsNotAnError() {
        let outcome = parse("GET /health HTTP/1.1\r\nHost: a\r\n")
        #expect(outcome.error == nil)
        #expect(outcome.requests.isEmpty)
        #expect(outcome.leftover > 0)
    }

    @Test func errorStatuses() {
        #expect(HTTPParseError.requestLineTooLong.status.code == 414)
        #expect(HTTPParseError.headerSectionTooLarge.status.code == 431)
        #expect(HTTPParseError.tooManyHeaderFields.status.code == 431)
        #expect(HTTPParseError.headerFieldTooLarge.status.code == 431)
        #expect(HTTPParseError.invalidHost.status.code == 400)
        #expect(HTTPParseError.bodyTooLarge(limit: 1).status.code == 413)
        #expect(HTTPParseError.unsupportedVersion.status.code == 505)
        #expect(HTTPParseError.unsupportedExpectation.status.code == 417)
        #expect(HTTPParseError.obsoleteLineFolding.status.code == 400)
    }
}
