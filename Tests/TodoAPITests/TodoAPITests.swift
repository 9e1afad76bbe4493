import Dispatch
import Glibc
import Synchronization
import HTTP
import Testing
import TestSupport
@testable import TodoAPI

@Suite struct TodoAPITests {
    /// The flow of the original design's load test (../shared/seeds/README.md), unchanged.
    @Test func seedClientFlow() throws {
        let api = try TodoServer()
        let list = try api.send("GET", "/todos")
        #expect(list.status == 200)
        #expect(list.text.contains("\"todos\":"))
        #expect(try api.send("GET", "/todos/x7Gk2pQz9a").status == 404)

        let created = try api.send("POST", "/todos", json: #"{"title":"Performance Test Todo 42","description":"Load test todo created at 1763927000000","priority":"k3JdXq9"}"#)
        #expect(created.status == 201)
        let id = try #require(created.field("id"))
        #expect(created.header("Location") == "/todos/\(id)")
        #expect(created.field("priority") == "k3JdXq9")

        let completedAt = "1763927123456"
        let completed = try api.send("PUT", "/todos/\(id)", json: #"{"title":"Updated Todo 7","completed":true,"completedAt":"\#(completedAt)"}"#)
        #expect(completed.status == 200)
        #expect(completed.field("completedAt") == "2025-11-23T19:45:23.456Z")
        #expect(completed.field("completed") == "true")

        let reopened = try api.send("PUT", "/todos/\(id)", json: #"{"title":"Updated Mixed Todo","completed":false}"#)
        #expect(reopened.status == 200)
        #expect(reopened.field("completedAt") == "null")

        #expect(try api.send("GET", "/todos/\(id)").status == 200)
        #expect(try api.send("DELETE", "/todos/\(id)").status == 200)
        #expect(try api.send("DELETE", "/todos/\(id)").status == 404)
        #expect(try api.send("GET", "/todos/\(id)").status == 404)
    }

    /// Creates take one of two statements (open ones name only the columns they set): both give
    /// the same todo for the same fields.
    @Test func createFormsAgree() throws {
        let api = try TodoServer()
        let plain = try api.send("POST", "/todos", json: #"{"title":"open"}"#)
        #expect(plain.status == 201)
        #expect(plain.field("priority") == "medium")
        #expect(plain.field("description") == "null")
        #expect(plain.field("completed") == "false")
        #expect(plain.field("completedAt") == "null")
        let nullPriority = try api.send("POST", "/todos", json: #"{"title":"open","priority":null,"description":"d"}"#)
        #expect(nullPriority.field("priority") == "medium")
        #expect(nullPriority.field("description") == "d")
        // Not completed: a completedAt is ignored, as in an update.
        let notCompleted = try api.send("POST", "/todos", json: #"{"title":"open","completed":false,"completedAt":"1763927123456"}"#)
        #expect(notCompleted.status == 201)
        #expect(notCompleted.field("completed") == "false")
        #expect(notCompleted.field("completedAt") == "null")
        let done = try api.send("POST", "/todos", json: #"{"title":"done","completed":true,"completedAt":"1763927123456","priority":"high"}"#)
        #expect(done.status == 201)
        #expect(done.field("completed") == "true")
        #expect(done.field("completedAt") == "2025-11-23T19:45:23.456Z")
        #expect(done.field("priority") == "high")
        let doneNow = try api.send("POST", "/todos", json: #"{"title":"done now","completed":true}"#)
        #expect(doneNow.field("completedAt") != "null")
        #expect(doneNow.field("priority") == "medium")
        // The same fields through each statement: completed null (open) and true (the other).
        for completed in ["null", "true"] {
            let emptyPriority = try api.send("POST", "/todos", json: #"{"title":"e","priority":"","completed":\#(completed)}"#)
            #expect(emptyPriority.status == 201)
            #expect(emptyPriority.field("priority") == "", "completed \(completed)")
            let nullPriority = try api.send("POST", "/todos", json: #"{"title":"n","priority":null,"description":null,"completed":\#(completed)}"#)
            #expect(nullPriority.field("priority") == "medium", "completed \(completed)")
            #expect(nullPriority.field("description") == "null", "completed \(completed)")
            #expect(nullPriority.field("completed") == (completed == "true" ? "true" : "false"))
        }
    }

    @Test(arguments: [
        (#"{"description":"no title"}"#, "title"),
        (#"{"title":"   "}"#, "title"),
        (#"{"title":"\#(String(repeating: "x", count: 201))"}"#, "title"),
        (#"{"title":"ok","description":"\#(String(repeating: "d", count: 2001))"}"#, "description"),
        (#"{"title":"ok","priority":"\#(String(repeating: "p", count: 33))"}"#, "priority"),
        (#"{"title":42}"#, "title"),
        (#"{"title":"ok","completed":"yes"}"#, "completed"),
        (#"{"title":"ok","completedAt":"yesterday"}"#, "completedAt"),
        (#"{"title":"ok","completedAt":1.5}"#, "completedAt"),
        (#"{"title":"ok","owner":"me"}"#, "owner"),
        (#"{"title":"nul\u0000byte"}"#, "title"),
        (#"[1,2]"#, ""),
        (#""just a string""#, ""),
    ])
    func invalidBodiesAre400NamingTheField(body: String, field: String) throws {
        let api = try TodoServer()
        let response = try api.send("POST", "/todos", json: body)
        #expect(response.status == 400)
        #expect(response.header("Content-Type") == "application/problem+json")
        #expect(response.text.contains("\"field\":\"\(field)\""))
        #expect(response.field("requestId") != nil)
        #expect(try api.count() == 0)
    }

    @Test func malformedJSONAndMediaTypes() throws {
        let api = try TodoServer()
        #expect(try api.send("POST", "/todos", json: #"{"title":"a",}"#).status == 400)
        #expect(try api.send("POST", "/todos", json: "").status == 400)
        #expect(try api.send("POST", "/todos", json: #"{"title":"a","title":"b"}"#).status == 400)
        #expect(try api.send("POST", "/todos", json: #"{"title":"a"}"#, headers: ["Content-Type": "text/plain"]).status == 415)
        let client = try TestClient(port: api.port)
        try client.send("POST /todos HTTP/1.1\r\nHost: t\r\nContent-Length: 13\r\n\r\n{\"title\":\"a\"}")
        #expect(try client.readResponse().status == 415)
        #expect(try api.send("POST", "/todos", json: #"{"title":"charset"}"#, headers: ["Content-Type": "application/json; charset=utf-8"]).status == 201)
        #expect(try api.send("POST", "/todos", json: #"{"title":"unicode \ud83c\udf89 日本語"}"#).field("title") == "unicode 🎉 日本語")
    }

    @Test func completedAtRules() throws {
        let api = try TodoServer()
        // completed without completedAt: the server sets it.
        let done = try api.send("POST", "/todos", json: #"{"title":"a","completed":true}"#)
        #expect(done.field("completedAt")?.hasSuffix("Z") == true)
        let id = try #require(done.field("id"))
        // RFC 3339 with an offset, normalised to UTC with milliseconds.
        let offset = try api.send("PATCH", "/todos/\(id)", json: #"{"completedAt":"2026-01-02T09:04:05.678+09:00"}"#)
        #expect(offset.field("completedAt") == "2026-01-02T00:04:05.678Z")
        // Epoch milliseconds as a JSON number.
        let number = try api.send("PATCH", "/todos/\(id)", json: #"{"completedAt":0}"#)
        #expect(number.field("completedAt") == "1970-01-01T00:00:00.000Z")
        // Reopened: cleared.
        let open = try api.send("PATCH", "/todos/\(id)", json: #"{"completed":false}"#)
        #expect(open.field("completedAt") == "null")
        // completedAt on a todo that is not completed is cleared too.
        let ignored = try api.send("PATCH", "/todos/\(id)", json: #"{"completedAt":"2026-01-01T00:00:00Z"}"#)
        #expect(ignored.field("completedAt") == "null")
    }

    @Test func putReplacesAndPatchMerges() throws {
        let api = try TodoServer()
        let created = try api.send("POST", "/todos", json: #"{"title":"a","description":"d","priority":"high"}"#)
        let id = try #require(created.field("id"))
        let patched = try api.send("PATCH", "/todos/\(id)", json: #"{"description":null,"priority":null}"#)
        #expect(patched.status == 200)
        #expect(patched.field("description") == "null")
        #expect(patched.field("priority") == "medium")
        #expect(patched.field("title") == "a")
        #expect(try api.send("PATCH", "/todos/\(id)", json: #"{"title":null}"#).status == 400)
        let replaced = try api.send("PUT", "/todos/\(id)", json: #"{"title":"b","priority":"low"}"#)
        #expect(replaced.field("title") == "b")
        #expect(replaced.field("priority") == "low")
        let reset = try api.send("PUT", "/todos/\(id)", json: #"{"title":"c"}"#)
        #expect(reset.field("priority") == "medium")
        #expect(try api.send("PUT", "/todos/\(id)", json: #"{"priority":"low"}"#).status == 400)
        #expect(try api.send("PUT", "/todos/not-a-uuid", json: #"{"title":"x"}"#).status == 404)
        #expect(try api.send("PATCH", "/todos/00000000-0000-0000-0000-000000000000", json: #"{"title":"x"}"#).status == 404)
    }

    @Test func conditionalRequests() throws {
        let api = try TodoServer()
        let created = try api.send("POST", "/todos", json: #"{"title":"a"}"#)
        let id = try #require(created.field("id"))
        let etag = try #require(created.header("ETag"))
        #expect(etag == "\"1\"")
        let notModified = try api.send("GET", "/todos/\(id)", headers: ["If-None-Match": etag])
        #expect(notModified.status == 304 && notModified.header("ETag") == etag)
        let fetched = try api.send("GET", "/todos/\(id)", headers: ["If-None-Match": "\"999\""])
        #expect(fetched.status == 200 && fetched.header("ETag") == etag)
        let updated = try api.send("PATCH", "/todos/\(id)", json: #"{"title":"b"}"#, headers: ["If-Match": etag])
        #expect(updated.status == 200)
        #expect(updated.header("ETag") == "\"2\"")
        let stale = try api.send("PATCH", "/todos/\(id)", json: #"{"title":"c"}"#, headers: ["If-Match": etag])
        #expect(stale.status == 412)
        #expect(try api.send("DELETE", "/todos/\(id)", headers: ["If-Match": etag]).status == 412)
        #expect(try api.send("DELETE", "/todos/\(id)", headers: ["If-Match": "W/" + updated.header("ETag")!]).status == 412)
        #expect(try api.send("DELETE", "/todos/\(id)", headers: ["If-Match": updated.header("ETag")!]).status == 200)
    }

    /// Two clients hold the same ETag and update at once: exactly one wins, no lost update.
    @Test func sameETagExactlyOneWins() throws {
        let api = try TodoServer()
        for round in 0..<10 {
            let created = try api.send("POST", "/todos", json: #"{"title":"race \#(round)"}"#)
            let id = try #require(created.field("id"))
            let etag = try #require(created.header("ETag"))
            let statuses = Mutex<[Int]>([])
            DispatchQueue.concurrentPerform(iterations: 2) { i in
                let status = (try? api.send("PUT", "/todos/\(id)", json: #"{"title":"writer \#(i)"}"#, headers: ["If-Match": etag]).status) ?? 0
                statuses.withLock { $0.append(status) }
            }
            #expect(statuses.withLock { $0.sorted() } == [200, 412])
        }
    }

    @Test func idempotentCreates() throws {
        let api = try TodoServer()
        let body = #"{"title":"pay rent"}"#
        let first = try api.send("POST", "/todos", json: body, headers: ["Idempotency-Key": "key-1"])
        #expect(first.status == 201)
        let again = try api.send("POST", "/todos", json: body, headers: ["Idempotency-Key": "key-1"])
        #expect(again.status == 201)
        #expect(again.text == first.text)
        #expect(again.header("Location") == first.header("Location"))
        #expect(try api.count() == 1)
        let different = try api.send("POST", "/todos", json: #"{"title":"pay more rent"}"#, headers: ["Idempotency-Key": "key-1"])
        #expect(different.status == 422)
        #expect(try api.count() == 1)
        #expect(try api.send("POST", "/todos", json: body, headers: ["Idempotency-Key": String(repeating: "k", count: 256)]).status == 400)
    }

    /// The client sends, then loses the connection before reading the answer, and retries.
    @Test func idempotentRetryAfterLostResponseCreatesOne() async throws {
        let api = try TodoServer()
        let body = #"{"title":"lost response"}"#
        let lost = try TestClient(port: api.port)
        try lost.send("POST /todos HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nIdempotency-Key: retry-1\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        var linger = linger(l_onoff: 1, l_linger: 0)
        setsockopt(lost.fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<linger>.size))
        shutdown(lost.fd, Int32(SHUT_RDWR))
        let retried = try await eventually(attempts: 50, pause: 50_000) { () throws -> TestResponse in
            let response = try api.send("POST", "/todos", json: body, headers: ["Idempotency-Key": "retry-1"])
            guard response.status == 201 else { throw TestSetupError.missing("status \(response.status)") }
            return response
        }
        #expect(retried.field("title") == "lost response")
        // Concurrent retries too: still one.
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            _ = try? api.send("POST", "/todos", json: body, headers: ["Idempotency-Key": "retry-1"])
        }
        #expect(try api.count() == 1)
    }

    /// 100 parallel creates, then every page walked with the cursor while more are inserted:
    /// each of the 100 is seen exactly once.
    @Test func cursorWalkIsStableWhileOthersInsert() throws {
        let api = try TodoServer()
        let ids = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 100) { i in
            if let id = try? api.send("POST", "/todos", json: #"{"title":"item \#(i)"}"#).field("id") {
                ids.withLock { $0.append(id) }
            }
        }
        let created = Set(ids.withLock { $0 })
        #expect(created.count == 100)
        var seen: [String] = []
        var cursor: String?
        var pages = 0
        repeat {
            // Inserts between pages land before the walk's position (newest first): never seen twice.
            _ = try api.send("POST", "/todos", json: #"{"title":"meanwhile \#(pages)"}"#)
            let path = "/todos?limit=7" + (cursor.map { "&cursor=\($0)" } ?? "")
            let page = try api.send("GET", path)
            #expect(page.status == 200)
            for piece in page.text.split(separator: "\"id\":\"").dropFirst() {
                seen.append(String(piece.prefix { $0 != "\"" }))
            }
            cursor = page.field("nextCursor").flatMap { $0 == "null" ? nil : $0 }
            pages += 1
        } while cursor != nil && pages < 100
        #expect(Set(seen).count == seen.count, "a todo was returned twice")
        #expect(created.isSubset(of: Set(seen)))
        #expect(pages >= 15)
    }

    @Test func listFilters() throws {
        let api = try TodoServer()
        _ = try api.send("POST", "/todos", json: #"{"title":"Buy MILK","completed":true}"#)
        _ = try api.send("POST", "/todos", json: #"{"title":"buy bread"}"#)
        _ = try api.send("POST", "/todos", json: #"{"title":"100% done_ok"}"#)
        func titles(_ query: String) throws -> Int {
            try api.send("GET", "/todos?\(query)").text.split(separator: "\"title\"", omittingEmptySubsequences: false).count - 1
        }
        #expect(try titles("q=milk") == 1)
        #expect(try titles("q=BUY") == 2)
        #expect(try titles("q=%25") == 1)   // a literal %, not a wildcard
        #expect(try titles("q=_") == 1)
        #expect(try titles("completed=true") == 1)
        #expect(try titles("completed=false&q=buy") == 1)
        #expect(try titles("limit=1") == 1)
        #expect(try api.send("GET", "/todos?limit=101").status == 400)
        #expect(try api.send("GET", "/todos?limit=abc").text.contains("\"field\":\"limit\""))
        #expect(try api.send("GET", "/todos?cursor=garbage!").text.contains("\"field\":\"cursor\""))
        #expect(try api.send("GET", "/todos?q=%ZZ").status == 400)
    }

    @Test func databaseDownIs503WithRetryAfter() throws {
        var unreachable = try TestDatabase.settings("postgres://todo@127.0.0.1:1/todo")
        unreachable["application_name"] = "down"
        let api = try TodoServer(settingsOverride: { _ in unreachable })
        let response = try api.send("POST", "/todos", json: #"{"title":"a"}"#)
        #expect(response.status == 503)
        #expect(response.header("Retry-After") == "1")
        #expect(!response.text.contains("127.0.0.1"))
        #expect(try api.send("GET", "/health").status == 200)
    }

    @Test func requestIDRoundTrip() throws {
        let api = try TodoServer()
        let given = try api.send("GET", "/todos/nope", headers: ["X-Request-ID": "abc-123.x:y"])
        #expect(given.header("X-Request-ID") == "abc-123.x:y")
        #expect(given.field("requestId") == "abc-123.x:y")
        let replaced = try api.send("GET", "/todos/nope", headers: ["X-Request-ID": "bad id<script>"])
        #expect(replaced.header("X-Request-ID") != "bad id<script>")
        #expect(replaced.header("X-Request-ID")?.isEmpty == false)
    }
}


@Suite struct MetricsTests {
    @Test func exposedCountsMatchTheRequestsSent() async throws {
        let api = try TodoServer()
        for _ in 0..<7 { #expect(try api.send("GET", "/health").status == 200) }
        for _ in 0..<3 { #expect(try api.send("GET", "/todos/not-a-uuid").status == 404) }
        #expect(try api.send("GET", "/no/such/path").status == 404)
        _ = try api.send("POST", "/todos", json: #"{"title":"counted"}"#)
        let router = MetricsRoutes.makeRouter(server: api.server.server, sink: nil, database: api.database)
        guard case .handler(.async(let handler), _, _) = router.match(.get, path: "/metrics") else {
            Issue.record("no /metrics route")
            return
        }
        let loop = api.group.loops[0]
        let response = await Task(executorPreference: loop) {
            await handler(HTTPRequest(head: try! parseHead("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"), body: []))
        }.value
        let text = String(decoding: response.body, as: UTF8.self)
        #expect(response.contentType?.hasPrefix("text/plain; version=0.0.4") == true)
        #expect(text.contains(#"http_requests_total{method="GET",route="/health",status="200"} 7"#))
        #expect(text.contains(#"http_requests_total{method="GET",route="/todos/:id",status="404"} 3"#))
        #expect(text.contains(#"http_requests_total{method="GET",route="unmatched",status="404"} 1"#))
        #expect(text.contains(#"http_requests_total{method="POST",route="/todos",status="201"} 1"#))
        #expect(text.contains(#"http_request_duration_seconds_count{route="/health"} 7"#))
        #expect(text.contains(#"http_request_duration_seconds_bucket{route="/health",le="+Inf"} 7"#))
        #expect(!text.contains("not-a-uuid"))  // labels are route templates, never raw paths
        #expect(text.contains("process_resident_memory_bytes"))
        #expect(text.contains(#"db_pool_connections{state="idle"}"#))
        // Every sample line is `name{labels} value` or `name value`.
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            #expect(line.split(separator: " ").count == 2, "bad sample line \(line)")
        }
    }

    @Test func healthEchoesTheRequestID() throws {
        let api = try TodoServer()
        let echoed = try api.send("GET", "/health", headers: ["X-Request-ID": "trace-me.1"])
        #expect(echoed.header("X-Request-ID") == "trace-me.1")
        let made = try api.send("GET", "/health")
        #expect(made.header("X-Request-ID")?.isEmpty == false)
    }
}

func parseHead(_ raw: String) throws -> HTTPRequestHead {
    var parser = HTTPParser()
    let bytes = Array(raw.utf8)
    guard case .head(let head) = bytes.withUnsafeBytes({ parser.parse($0) }).event else {
        throw TestSetupError.missing("not a head")
    }
    return head
}
