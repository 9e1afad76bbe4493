import Glibc
import Synchronization
import Testing
@testable import HTTP
import Net
import TestSupport

/// The server over real sockets on 127.0.0.1, port 0. `.serialized`: some tests open thousands
/// of connections or wait for timeouts, which should not compete with each other.
@Suite(.serialized) struct LiveServerTests {
    @Test func healthOverKeepAlive() throws {
        let server = try LiveServer()
        let client = try TestClient(port: server.port)
        for _ in 0..<3 {
            try client.send("GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.text == #"{"status":"ok"}"#)
            #expect(response.header("Content-Type") == "application/json")
            #expect(response.header("Date")?.hasSuffix(" GMT") == true)
            #expect(response.header("Connection") == nil)
        }
    }

    @Test func pipelinedResponsesComeInOrder() throws {
        let server = try LiveServer()
        let client = try TestClient(port: server.port)
        // An async (slow) request between sync ones: answers must still come in request order.
        try client.send("GET /items/1 HTTP/1.1\r\nHost: t\r\n\r\n"
            + "GET /slow?ms=100 HTTP/1.1\r\nHost: t\r\n\r\n"
            + "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nping"
            + "GET /items/%E3%81%82 HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try client.readResponse().text == #"{"id":"1"}"#)
        #expect(try client.readResponse().text == #"{"slow":true}"#)
        #expect(try client.readResponse().text == "ping")
        #expect(try client.readResponse().text == #"{"id":"あ"}"#)
    }

    /// Connections are edge-triggered (`HTTPConnection.readInterest`): bytes left in the socket
    /// when reading stopped early (responses to write first, the bound of four reads a wake-up)
    /// bring no new event, so the connection must ask epoll again. A burst of pipelined requests
    /// several times the loop's 64 KiB read buffer, with nothing sent after it: every request is
    /// answered, in order, the last included.
    @Test func aPipelinedBurstLargerThanFourReadsIsAnsweredToTheLast() throws {
        let server = try LiveServer()
        let client = try TestClient(port: server.port)
        let count = 8_000
        var burst = ""
        for i in 0..<count { burst += "GET /items/\(i) HTTP/1.1\r\nHost: t\r\n\r\n" }
        #expect(burst.utf8.count > 4 * 64 * 1024)
        // From another thread: the server stops reading while its answers are unread.
        spawnThread { try? client.send(burst) }
        var answered = 0
        while answered < count, let response = try? client.readResponse(), response.text == "{\"id\":\"\(answered)\"}" {
            answered += 1
        }
        #expect(answered == count)
    }

    /// A request and the client's end of stream in one wake-up (`nc -N`, a client that
    /// half-closes after sending): edge-triggered, the end of stream must be read with the
    /// request, past the short read, or the connection waits for the idle timeout.
    @Test func aRequestFollowedByTheClientsEndOfStreamIsAnsweredAndClosed() throws {
        let server = try LiveServer { $0.idleTimeout = .seconds(60) }
        let client = try TestClient(port: server.port)
        try client.send("GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        shutdown(client.fd, Int32(SHUT_WR))
        #expect(try client.readResponse().status == 200)
        // Closed at once, well inside the client's 5 s receive timeout (the idle one is 60 s).
        #expect(client.isClosedByServer())
    }

    /// The same for one body: after four full reads the connection stops and asks epoll again,
    /// and the rest of a 1 MiB upload still arrives.
    @Test func aBodyLongerThanFourReadsArrivesWhole() throws {
        let server = try LiveServer { $0.limits.maxBodyBytes = 2 << 20 }
        let client = try TestClient(port: server.port)
        let body = [UInt8](repeating: UInt8(ascii: "b"), count: 1 << 20)
        spawnThread { try? client.send(Array("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body) }
        let response = try client.readResponse()
        #expect(response.status == 200)
        #expect(response.body == body)
    }

    @Test func callbackHandlersAnswerInOrderAndHeadOmitsTheBody() throws {
        let server = try LiveServer()
        let client = try TestClient(port: server.port)
        try client.send("GET /later/a HTTP/1.1\r\nHost: t\r\n\r\n"
            + "GET /items/1 HTTP/1.1\r\nHost: t\r\n\r\n"
            + "HEAD /later/b HTTP/1.1\r\nHost: t\r\n\r\n"
            + "GET /later/c HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try client.readResponse().text == #"{"later":"a"}"#)
        #expect(try client.readResponse().text == #"{"id":"1"}"#)
        let head = try client.readResponse(head: true)
        #expect(head.status == 200)
        #expect(head.header("Content-Length") == "13")
        // Had HEAD carried a body, this response would not parse.
        #expect(try client.readResponse().text == #"{"later":"c"}"#)
    }

    @Test func aDroppedResponderAnswers500AndTheConnectionGoesOn() throws {
        let server = try LiveServer()
        let client = try TestClient(port: server.port)
        try client.send("GET /unanswered HTTP/1.1\r\nHost: t\r\n\r\n")
        let response = try client.readResponse()
        #expect(response.status == 500)
        #expect(response.header("Content-Type") == "application/problem+json")
        try client.send("GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try client.readResponse().status == 200)
    }

    /// A callback that answers inside `dispatch` (at once, or by dropping its responder) while the
    /// request came from the connection's pending bytes (pipelined behind a slow request, or a
    /// head split across reads) is answered once, in order: it once re-entered the parser, which
    /// parsed the same pending request again without end.
    @Test func callbacksAnsweredAtOnceFromPendingBytesAnswerOnce() throws {
        let server = try LiveServer()
        let client = try TestClient(port: server.port)
        try client.send("GET /slow?ms=50 HTTP/1.1\r\nHost: t\r\n\r\n"
            + "GET /at-once HTTP/1.1\r\nHost: t\r\n\r\n"
            + "GET /unanswered HTTP/1.1\r\nHost: t\r\n\r\n"
            + "GET /at-once HTTP/1.1\r\nHost: t\r\n\r\n"
            + "GET /items/1 HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try client.readResponse().text == #"{"slow":true}"#)
        #expect(try client.readResponse().text == #"{"atOnce":true}"#)
        #expect(try client.readResponse().status == 500)
        #expect(try client.readResponse().text == #"{"atOnce":true}"#)
        #expect(try client.readResponse().text == #"{"id":"1"}"#)

        for path in ["/at-once", "/unanswered"] {
            try client.send("GET \(path) HTTP/1.1\r\nHo")
            usleep(30_000)
            try client.send("st: t\r\n\r\n")
            #expect(try client.readResponse().status == (path == "/at-once" ? 200 : 500))
        }
        try client.send("GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try client.readResponse().status == 200)
    }

    @Test func http10ClosesUnlessKeepAlive() throws {
        let server = try LiveServer()
        let closing = try TestClient(port: server.port)
        try closing.send("GET /health HTTP/1.0\r\n\r\n")
        let first = try closing.readResponse()
        #expect(first.status == 200)
        #expect(first.header("Connection") == "close")
        #expect(closing.isClosedByServer())

        let persistent = try TestClient(port: server.port)
        try persistent.send("GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        #expect(try persistent.readResponse().header("Connection") == "keep-alive")
        try persistent.send("GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        #expect(try persistent.readResponse().status == 200)
    }

    @Test func connectionCloseIsHonoured() throws {
        let server = try LiveServer()
        let client = try TestClient(port: server.port)
        try client.send("GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(try client.readResponse().header("Connection") == "close")
        #expect(client.isClosedByServer())
    }

    @Test func requestsAfterConnectionCloseAreNotAnswered() throws {
        let server = try LiveServer()
        let client = try TestClient(port: server.port)
        try client.send("GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try client.readResponse().header("Connection") == "close")
        #expect(client.isClosedByServer())
    }

    @Test func drainFinishesAHeadStillArriving() throws {
        let server = try LiveServer()
        let client = try TestClient(port: server.port)
        try client.send("GET /health HTTP/1.1\r\nHost: t\r\n")
        #expect(server.waitForOpenConnections(1))
        usleep(50_000)
        server.server.beginDrain()
        usleep(50_000)
        try client.send("\r\n")
        let response = try client.readResponse()
        #expect(response.status == 200)
        #expect(response.header("Connection") == "close")
        #expect(client.isClosedByServer())
    }

    @Test func headHasHeadersButNoBody() throws {
        let server = try LiveServer()
        let client = try TestClient(port: server.port)
        try client.send("HEAD /health HTTP/1.1\r\nHost: t\r\n\r\nGET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        let head = try client.readResponse(head: true)
        #expect(head.status == 200)
        #expect(head.header("Content-Length") == "15")
        // If HEAD had carried a body, this second response would not parse.
        #expect(try client.readResponse().text == #"{"status":"ok"}"#)
    }

    @Test func routingErrorsAreJSON() throws {
        let server = try LiveServer()
        let client = try TestClient(port: server.port)
        try client.send("GET /nope HTTP/1.1\r\nHost: t\r\n\r\n")
        let missing = try client.readResponse()
        #expect(missing.status == 404)
        #expect(missing.header("Content-Type") == "application/problem+json")
        #expect(missing.text.contains(#""status":404"#))

        try client.send("DELETE /health HTTP/1.1\r\nHost: t\r\n\r\n")
        let wrongMethod = try client.readResponse()
        #expect(wrongMethod.status == 405)
        #expect(wrongMethod.header("Allow") == "GET, HEAD, OPTIONS")

        try client.send("OPTIONS /health HTTP/1.1\r\nHost: t\r\n\r\n")
        let options = try client.readResponse()
        #expect(options.status == 204)
        #expect(options.header("Allow") == "GET, HEAD, OPTIONS")
        #expect(options.header("Content-Length") == nil)
    }

    @Test func expectContinue() throws {
        let server = try LiveServer()
        let client = try TestClient(port: server.port)
        try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        #expect(try client.readResponse().status == 100)
        try client.send("hello")
        #expect(try client.readResponse().text == "hello")

        // Too large: refused at once, without 100 Continue and without reading the body.
        let big = try TestClient(port: server.port)
        try big.send("POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 99999999\r\n\r\n")
        let refused = try big.readResponse()
        #expect(refused.status == 413)
        #expect(refused.header("Connection") == "close")
    }

    @Test func chunkedBody() throws {
        let server = try LiveServer()
        let client = try TestClient(port: server.port)
        try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n")
        try client.send("2\r\nde\r\n0\r\nTrailer-Field: 1\r\n\r\n")
        #expect(try client.readResponse().text == "abcde")
    }

    /// Each framing error and limit: the right status, a JSON body, and the connection closed.
    @Test(arguments: [
        FramingCase("request line over 8 KiB", "GET /\(String(repeating: "a", count: 9000)) HTTP/1.1\r\nHost: t\r\n\r\n", 414),
        FramingCase("header section over 32 KiB", "GET / HTTP/1.1\r\nHost: t\r\nX-Big: \(String(repeating: "b", count: 33 * 1024))\r\n\r\n", 431),
        FramingCase("over 100 fields", "GET / HTTP/1.1\r\nHost: t\r\n\((0..<101).map { "X-\($0): v\r\n" }.joined())\r\n", 431),
        FramingCase("body over 1 MiB", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1048577\r\n\r\n", 413),
        FramingCase("HTTP/3.0", "GET / HTTP/3.0\r\nHost: t\r\n\r\n", 505),
        FramingCase("CL and TE", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        FramingCase("differing CL", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        FramingCase("unknown coding", "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
        FramingCase("obs-fold", "GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n", 400),
        FramingCase("space before colon", "GET / HTTP/1.1\r\nHost : t\r\n\r\n", 400),
        FramingCase("missing Host", "GET / HTTP/1.1\r\n\r\n", 400),
        FramingCase("repeated Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        FramingCase("invalid Host", "GET / HTTP/1.1\r\nHost: bad host\r\n\r\n", 400),
        FramingCase("field over 16 KiB", "GET / HTTP/1.1\r\nHost: a\r\nCookie: \(String(repeating: "c", count: 17_000))\r\n\r\n", 431),
    ])
    func framingErrorsCloseTheConnection(_ framing: FramingCase) throws {
        let (request, status) = (framing.request, framing.status)
        let server = try LiveServer()
        let client = try TestClient(port: server.port)
        try client.send(request + "GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        let response = try client.readResponse()
        #expect(response.status == status)
        #expect(response.header("Content-Type") == "application/problem+json")
        #expect(response.header("Connection") == "close")
        #expect(response.text.contains("\"status\":\(status)"))
        // The request after the bad one is not answered: framing is lost, so is the connection.
        #expect(client.isClosedByServer())
    }

    @Test func headerTimeoutAnswers408() throws {
        let server = try LiveServer { $0.headerTimeout = .milliseconds(200) }
        let client = try TestClient(port: server.port)
        try client.send("GET /health HTTP/1.1\r\nHost: t\r\n")  // never finished (slowloris)
        let response = try client.readResponse()
        #expect(response.status == 408)
        #expect(response.header("X-Request-ID") != nil)
        #expect(client.isClosedByServer())
        #expect(try server.requestCount(status: 408, method: "-") == 1)
    }

    @Test func headerTimeoutIsNotExtendedByTrickling() throws {
        let server = try LiveServer { $0.headerTimeout = .milliseconds(300) }
        let client = try TestClient(port: server.port)
        // One byte every 50 ms: each arrives "in time", but the head as a whole does not.
        var answered: TestResponse?
        for byte in "GET /health HTTP/1.1\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".utf8 {
            if (try? client.send([byte])) == nil { break }
            usleep(50_000)
            if let response = try? TestClient.peek(client) { answered = response; break }
        }
        #expect(answered?.status == 408)
    }

    @Test func theHeadDeadlineCountsFromTheRequestLinesFirstByte() throws {
        let server = try LiveServer { $0.headerTimeout = .milliseconds(300) }
        let client = try TestClient(port: server.port)
        // Slowloris on the request line itself: a byte every 50 ms never completes it in time.
        var answered: TestResponse?
        for byte in "GET /health?padding=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n".utf8 {
            if (try? client.send([byte])) == nil { break }
            usleep(50_000)
            if let response = try? TestClient.peek(client) { answered = response; break }
        }
        #expect(answered?.status == 408)
        #expect(answered?.header("X-Request-ID") != nil)
    }

    @Test func aBodyBelowTheMinimumRateIsCutOff() throws {
        let server = try LiveServer {
            $0.bodyTimeout = .seconds(15)  // no pause is ever this long
            $0.minRateGrace = .milliseconds(300)
            $0.bodyMinRate = 500
        }
        let client = try TestClient(port: server.port)
        try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
        var answered: TestResponse?
        for _ in 0..<200 {
            if (try? client.send("x")) == nil { break }
            usleep(20_000)  // 50 bytes/s
            if let response = try? TestClient.peek(client) { answered = response; break }
        }
        #expect(answered?.status == 408)
        #expect(try server.requestCount(status: 408, method: "POST") == 1)
    }

    @Test func bodyTimeoutAnswers408() throws {
        let server = try LiveServer { $0.bodyTimeout = .milliseconds(200) }
        let client = try TestClient(port: server.port)
        try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        let response = try client.readResponse()
        #expect(response.status == 408)
        #expect(response.header("X-Request-ID") != nil)
        // Counted with its method: the head had arrived.
        #expect(try server.requestCount(status: 408, method: "POST") == 1)
    }

    @Test func bodyTooLargeIsAnsweredAndCountedWithItsMethod() throws {
        let server = try LiveServer { $0.limits.maxBodyBytes = 100 }
        let client = try TestClient(port: server.port)
        try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 101\r\n\r\n")
        let response = try client.readResponse()
        #expect(response.status == 413)
        #expect(response.header("X-Request-ID") != nil)
        #expect(try server.requestCount(status: 413, method: "POST") == 1)
    }

    @Test func aRequestTheClientAbandonedIsCountedAs499() throws {
        let server = try LiveServer()
        do {
            let client = try TestClient(port: server.port)
            try client.send("GET /slow?ms=300 HTTP/1.1\r\nHost: t\r\n\r\n")
            usleep(50_000)
        }  // closed before the answer
        var count = 0
        for _ in 0..<100 where count == 0 {
            usleep(20_000)
            count = try server.requestCount(status: 499, method: "GET")
        }
        #expect(count == 1)
    }

    @Test func aCRLFAfterABodyDoesNotStartAHeadDeadline() throws {
        let server = try LiveServer { $0.headerTimeout = .milliseconds(200) }
        let client = try TestClient(port: server.port)
        // RFC 9112 §2.2: a client may send an empty line after a body.
        try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nok\r\n")
        #expect(try client.readResponse().status == 200)
        usleep(500_000)  // well past the head deadline: an idle connection is not timed out by it
        #expect(!client.hasData)
        try client.send("GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try client.readResponse().status == 200)
    }

    @Test func idleKeepAliveConnectionIsClosed() throws {
        let server = try LiveServer { $0.idleTimeout = .milliseconds(200) }
        let client = try TestClient(port: server.port)
        try client.send("GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try client.readResponse().status == 200)
        // No second request: the server closes silently (no 408 on an idle connection).
        #expect(client.isClosedByServer())
        #expect(server.server.waitUntilDrained(timeout: .seconds(2)))
        #expect(server.server.openConnections == 0)
    }

    @Test func stalledReaderIsCutOffByWriteTimeout() throws {
        let server = try LiveServer { $0.writeTimeout = .milliseconds(300) }
        let client = try TestClient(port: server.port)
        var small = Int32(4096)
        setsockopt(client.fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        // Ask for 1 MiB responses and never read: the server's writes stall, it stops reading our
        // requests (back-pressure) and closes once the write deadline passes.
        let request = "GET /big HTTP/1.1\r\nHost: t\r\n\r\n"
        for _ in 0..<8 { try client.send(request) }
        #expect(server.waitForOpenConnections(1))
        #expect(server.server.waitUntilDrained(timeout: .seconds(5)))
        // Cut off, not finished: far less than the 8 MiB asked for can have arrived.
        var received = 0
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(client.fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            received += n
        }
        #expect(received < 8 << 20)
    }

    @Test func newRequestIsAnsweredWith2000IdleConnections() throws {
        let server = try LiveServer()
        var idle: [TestClient] = []
        for _ in 0..<2000 { idle.append(try TestClient(port: server.port)) }
        // Half of them have sent a partial head as well.
        for client in idle.prefix(1000) { try client.send("GET /health HTTP/1.1\r\n") }
        #expect(server.waitForOpenConnections(2000))
        let fresh = try TestClient(port: server.port)
        try fresh.send("GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try fresh.readResponse().status == 200)
        #expect(server.server.openConnections == 2001)
    }

    @Test func atTheConnectionLimitTheLongestIdleMakesRoom() throws {
        // One loop, so that all connections compete for the same table.
        let group = try EventLoopGroup(count: 1)
        let server = try LiveServer(group: group) { $0.maxConnections = 3 }
        let clients = try (0..<3).map { _ in try TestClient(port: server.port) }
        for client in clients {
            try client.send("GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try client.readResponse().status == 200)
            usleep(20_000)  // distinct idle times: clients[0] is the longest idle
        }
        let extra = try TestClient(port: server.port)
        try extra.send("GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try extra.readResponse().status == 200)
        #expect(clients[0].isClosedByServer())
        #expect(server.server.openConnections == 3)
    }

    @Test func atTheConnectionLimitWithNoneIdleANewConnectionIsRefused() throws {
        let group = try EventLoopGroup(count: 1)
        let server = try LiveServer(group: group) { $0.maxConnections = 2 }
        let clients = try (0..<2).map { _ in try TestClient(port: server.port) }
        for client in clients { try client.send("GET /slow?ms=1000 HTTP/1.1\r\nHost: t\r\n\r\n") }
        #expect(server.waitForOpenConnections(2))
        usleep(100_000)  // both requests reach their handler
        let extra = try TestClient(port: server.port)
        try? extra.send("GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(extra.isClosedByServer())
        for client in clients { #expect(try client.readResponse().status == 200) }
    }

    @Test func aRequestSentJustAfterTheDrainBeganIsAnswered() throws {
        // A grace far longer than the wait below: with the default second, a wait slowed past it
        // (the whole suite in parallel, CI 2026-12-06) let the idle connection close on its grace
        // before the request went, and the test measured the machine, not the drain.
        let server = try LiveServer { $0.drainGrace = .seconds(60) }
        let client = try TestClient(port: server.port)
        try client.send("GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try client.readResponse().status == 200)
        // The connection is idle when the drain begins; a request the client sends before it
        // could see a FIN is answered, not reset (the SIGTERM drill's lost requests).
        server.server.beginDrain()
        // The drain reaches the loops asynchronously: once a new connection is refused
        // (ECONNREFUSED: every loop has closed its listener), it has. Any other failure to
        // connect proves nothing: with the whole suite running in parallel, one (a socket limit,
        // say) once ended this wait early, and the request was answered as an ordinary
        // keep-alive one (CI, 2026-12-06).
        var refused = false
        for _ in 0..<2_000 {
            do {
                _ = try TestClient(port: server.port)
            } catch TestClientError.connectFailed(let code) where code == ECONNREFUSED {
                refused = true
                break
            } catch {}
            usleep(5_000)
        }
        #expect(refused, "the drain never closed the listener")
        try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nok")
        let response = try client.readResponse()
        #expect(response.status == 200)
        #expect(response.header("Connection") == "close")
        #expect(client.isClosedByServer())
        #expect(server.server.waitUntilDrained(timeout: .seconds(5)))
    }

    @Test func oneAddressCannotTakeMoreThanItsShareOfConnections() throws {
        let server = try LiveServer { $0.maxConnectionsPerAddress = 3 }
        var clients = try (0..<3).map { _ in try TestClient(port: server.port) }
        #expect(server.waitForOpenConnections(3))
        // The fourth from the same address is refused at once...
        let refused = try TestClient(port: server.port)
        #expect(refused.isClosedByServer())
        // ...while the three are served, and a closed one frees its place.
        for client in clients {
            try client.send("GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try client.readResponse().status == 200)
        }
        clients.removeFirst()
        for _ in 0..<100 where server.server.openConnections > 2 { usleep(10_000) }
        let next = try TestClient(port: server.port)
        try next.send("GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try next.readResponse().status == 200)
    }

    @Test func anExemptAddressHasNoPerAddressCap() throws {
        let server = try LiveServer {
            $0.maxConnectionsPerAddress = 1
            $0.isExemptFromAddressLimit = { $0.description == "127.0.0.1" }
        }
        let clients = try (0..<3).map { _ in try TestClient(port: server.port) }
        for client in clients {
            try client.send("GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try client.readResponse().status == 200)
        }
    }

    @Test func gracefulDrainFinishesInFlightRequests() throws {
        let server = try LiveServer()
        let busy = try TestClient(port: server.port)
        let idle = try TestClient(port: server.port)
        try idle.send("GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try idle.readResponse().status == 200)

        try busy.send("GET /slow?ms=400 HTTP/1.1\r\nHost: t\r\n\r\n")
        usleep(100_000)  // let the request reach its handler
        server.server.beginDrain()

        // The in-flight request completes, told that the connection closes.
        let response = try busy.readResponse()
        #expect(response.status == 200)
        #expect(response.header("Connection") == "close")
        #expect(busy.isClosedByServer())
        // The idle keep-alive connection was closed; new connections are refused.
        #expect(idle.isClosedByServer())
        #expect(throws: TestClientError.self) { _ = try TestClient(port: server.port) }
        #expect(server.server.waitUntilDrained(timeout: .seconds(5)))
    }
}



struct FramingCase: Sendable, CustomTestStringConvertible {
    let name: String
    let request: String
    let status: Int

    init(_ name: String, _ request: String, _ status: Int) {
        self.name = name
        self.request = request
        self.status = status
    }

    var testDescription: String { name }
}

extension LiveServer {
    /// `http_requests_total` for one status and method, summed over routes and loops.
    func requestCount(status: Int, method: String) throws -> Int {
        let result = Mutex<HTTPMetrics?>(nil)
        server.metrics { metrics in result.withLock { $0 = metrics } }
        for _ in 0..<200 where result.withLock({ $0 == nil }) { usleep(5_000) }
        guard let metrics = result.withLock({ $0 }) else { throw TestSetupError.missing("no metrics") }
        return metrics.requests.filter { $0.key.status == status && $0.key.method == method }.map(\.value).reduce(0, +)
    }
}
