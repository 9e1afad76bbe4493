import Testing
@testable import HTTP

/// Routing as a pure function: pattern order, parameters, 405/OPTIONS.
struct RouterTests {
    static func router() -> Router {
        var router = Router()
        router.add(.get, "/todos/:id", .sync { request in .json(.ok, Array("param \(request.parameters["id"] ?? "-")".utf8)) })
        router.add(.get, "/todos/count", .sync { _ in .json(.ok, Array("literal".utf8)) })
        router.add(.get, "/todos", .sync { _ in .json(.ok, Array("list".utf8)) })
        router.add(.delete, "/todos/:id", .sync { _ in HTTPResponse(status: .noContent) })
        router.add(.get, "/a/:x/b/:y", .sync { request in .json(.ok, Array("\(request.parameters["x"]!) \(request.parameters["y"]!)".utf8)) })
        return router
    }

    static func body(_ match: Router.Match, _ path: String = "/") -> String? {
        guard case .handler(.sync(let handler), _, let parameters) = match else { return nil }
        let head = HTTPRequestHead(method: .get, version: .http1_1, target: path, fields: HTTPFields(bytes: [], entries: [], known: KnownFieldSlots()),
                                   contentLength: nil, isChunked: false, keepAlive: true, expectsContinue: false)
        var request = HTTPRequest(head: head, body: [], requestID: "test")
        request.parameters = parameters
        return String(decoding: handler(request).body, as: UTF8.self)
    }

    @Test func literalPatternsWinOverParametersWhateverTheOrder() {
        let router = Self.router()
        #expect(Self.body(router.match(.get, path: "/todos/count")) == "literal")
        #expect(Self.body(router.match(.get, path: "/todos/abc")) == "param abc")
        #expect(Self.body(router.match(.get, path: "/todos")) == "list")
        #expect(Self.body(router.match(.head, path: "/todos/abc")) == "param abc")
    }

    @Test func parametersArePercentDecodedAndNamed() {
        let router = Self.router()
        #expect(Self.body(router.match(.get, path: "/todos/%E3%81%82")) == "param あ")
        #expect(Self.body(router.match(.get, path: "/a/1/b/2")) == "1 2")
        guard case .notFound = router.match(.get, path: "/todos/%zz") else { Issue.record("a malformed escape matched"); return }
        guard case .notFound = router.match(.get, path: "/todos/") else { Issue.record("an empty segment matched"); return }
        guard case .notFound = router.match(.get, path: "/todos/a/b") else { Issue.record("an extra segment matched"); return }
    }

    @Test func otherMethodsGet405WithAllow() {
        guard case .methodNotAllowed(let allow, let route) = Self.router().match(.put, path: "/todos/abc") else {
            Issue.record("PUT was not refused")
            return
        }
        #expect(allow == "GET, HEAD, DELETE, OPTIONS")
        #expect(route == "/todos/:id")
    }
}
