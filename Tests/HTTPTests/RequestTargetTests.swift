import Testing
@testable import HTTP

/// How a request target splits into path and query (RFC 9112 §3.2: origin-form, absolute-form,
/// asterisk-form).
struct RequestTargetTests {
    @Test(arguments: [
        ("/todos", "/todos", nil),
        ("/todos?limit=20&q=a", "/todos", "limit=20&q=a"),
        ("/todos?", "/todos", ""),
        ("/t/%E3%81%82?q=あ", "/t/%E3%81%82", "q=あ"),
        ("/あ/b?x=?y", "/あ/b", "x=?y"),
        ("*", "*", nil),
        ("http://example.com/health?x=1", "/health", "x=1"),
        ("http://example.com", "/", nil),
        ("http://example.com?x=1", "/", "x=1"),
        ("https://user@example.com:8443/a/b", "/a/b", nil),
        ("example.com", "/", nil),
        ("", "/", nil),
    ] as [(String, String, String?)])
    func splitsPathAndQuery(_ target: String, _ path: String, _ query: String?) {
        let split = HTTPRequestHead.split(target)
        #expect(split.path == Substring(path))
        #expect(split.query.map(String.init) == query)
    }
}
