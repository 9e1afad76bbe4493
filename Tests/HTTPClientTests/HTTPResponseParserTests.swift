@testable import HTTPClient
import Testing

@Suite struct HTTPResponseParserTests {
    /// Feeds `text` in pieces of `step` bytes; the response once complete.
    func parse(_ text: String, step: Int = .max, maxBody: Int = 1 << 20, closeAtEnd: Bool = false) throws -> HTTPClientResponse? {
        var parser = HTTPResponseParser(maxBodyBytes: maxBody)
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + step)
            if try parser.feed(bytes[offset..<end]) == .complete { return parser.response }
            offset = end
        }
        if closeAtEnd, try parser.finish() == .complete { return parser.response }
        return nil
    }

    @Test(arguments: [1, 3, 1000])
    func contentLengthBodyInAnyPieces(step: Int) throws {
        let response = try #require(try parse("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}", step: step))
        #expect(response.status == 200)
        #expect(response.header("content-type") == "application/json")
        #expect(String(decoding: response.body, as: UTF8.self) == "{\"ok\":true}")
    }

    @Test(arguments: [1, 7, 1000])
    func chunkedBodyWithExtensionsAndTrailers(step: Int) throws {
        let text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
        let response = try #require(try parse(text, step: step))
        #expect(String(decoding: response.body, as: UTF8.self) == "hello world")
    }

    @Test func bodyToTheCloseEndsOnlyAtTheClose() throws {
        #expect(try parse("HTTP/1.0 200 OK\r\n\r\npartial") == nil)
        let response = try #require(try parse("HTTP/1.0 200 OK\r\n\r\nwhole", closeAtEnd: true))
        #expect(String(decoding: response.body, as: UTF8.self) == "whole")
    }

    @Test func informationalResponsesAreSkipped() throws {
        let response = try #require(try parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n"))
        #expect(response.status == 204)
        #expect(response.header("X-A") == "b")
    }

    @Test func aResponseCutShortIsAnError() throws {
        #expect(throws: HTTPClientError.self) { try parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", closeAtEnd: true) }
    }

    @Test func oversizedBodiesAreRefusedBeforeTheyAreRead() throws {
        let error = try #require(throws: HTTPClientError.self) { try parse("HTTP/1.1 200 OK\r\nContent-Length: 2048\r\n\r\n", maxBody: 1024) }
        #expect(error.kind == .tooLarge)
        let chunked = try #require(throws: HTTPClientError.self) {
            try parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n" + String(repeating: "x", count: 1024) + "\r\n1\r\nx\r\n0\r\n\r\n", maxBody: 1024)
        }
        #expect(chunked.kind == .tooLarge)
    }

    @Test func anEndlessHeadIsRefused() throws {
        let error = try #require(throws: HTTPClientError.self) { try parse("HTTP/1.1 200 OK\r\nX: " + String(repeating: "a", count: 20_000)) }
        #expect(error.kind == .tooLarge)
    }

    @Test(arguments: ["HTTP/2 200\r\n\r\n", "HTTP/1.1 2x0 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nbad line\r\n\r\n",
                      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"])
    func malformedResponsesAreErrors(_ text: String) {
        #expect(throws: HTTPClientError.self) { try parse(text) }
    }
}

@Suite struct HTTPClientURLTests {
    @Test func parsesWhatAWSAndECSUse() throws {
        let ecs = try #require(HTTPClientURL("http://169.254.170.2/v2/credentials/abc?x=1"))
        #expect(!ecs.isTLS && ecs.host == "169.254.170.2" && ecs.port == 80 && ecs.target == "/v2/credentials/abc?x=1")
        #expect(ecs.hostField == "169.254.170.2")
        let aws = try #require(HTTPClientURL("https://secretsmanager.us-east-1.amazonaws.com"))
        #expect(aws.isTLS && aws.port == 443 && aws.target == "/" && aws.hostField == "secretsmanager.us-east-1.amazonaws.com")
        let local = try #require(HTTPClientURL("http://127.0.0.1:4566"))
        #expect(local.hostField == "127.0.0.1:4566")
        let v6 = try #require(HTTPClientURL("http://[fd00:ec2::23]:8080/creds"))
        #expect(v6.host == "fd00:ec2::23" && v6.port == 8080 && v6.hostField == "[fd00:ec2::23]:8080")
    }

    @Test(arguments: ["ftp://x", "http://", "http://user:pw@host/", "http://host:0/", "http://host:99999/", "http://host/a b", "https://[::1/"])
    func refusesWhatItCannotUse(_ text: String) {
        #expect(HTTPClientURL(text) == nil)
    }

    @Test func requestsAreSerializedWithHostLengthAndClose() {
        let url = HTTPClientURL("http://127.0.0.1:9000/x")!
        let request = HTTPClientRequest(method: "POST", url: url, headers: [("X-A", "b")], body: Array("hi".utf8))
        #expect(String(decoding: request.serialized(), as: UTF8.self)
                == "POST /x HTTP/1.1\r\nHost: 127.0.0.1:9000\r\nX-A: b\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
    }
}
