@testable import AWS
import Dispatch
import Glibc
import HTTPClient
import Net
import Observability
import Synchronization
import Testing

@Suite struct ContainerCredentialsTests {
    @Test func theSDKsOrderAndRules() throws {
        let ecs = try #require(try ContainerCredentialsEndpoint.resolve(environment: ["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/x"]))
        #expect(ecs.url.description == "http://169.254.170.2/v2/credentials/x")
        #expect(ecs.authorization == nil)
        // Relative wins over full, as in botocore.
        let both = try #require(try ContainerCredentialsEndpoint.resolve(environment: [
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/a", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:1/b"]))
        #expect(both.url.host == "169.254.170.2")
        #expect(throws: AWSConfigurationError.self) {
            try ContainerCredentialsEndpoint.resolve(environment: ["AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://credentials.example.com/x"])
        }
        #expect(try ContainerCredentialsEndpoint.resolve(environment: ["AWS_CONTAINER_CREDENTIALS_FULL_URI": "https://credentials.example.com/x"]) != nil)
        #expect(try ContainerCredentialsEndpoint.resolve(environment: ["AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.2:9/x"]) != nil)
        #expect(throws: AWSConfigurationError.self, "a name that merely starts like a loopback address") {
            try ContainerCredentialsEndpoint.resolve(environment: ["AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1.evil.example/x"])
        }
        #expect(throws: AWSConfigurationError.self) {
            try ContainerCredentialsEndpoint.resolve(environment: ["AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1/x",
                                                                    "AWS_CONTAINER_AUTHORIZATION_TOKEN": "a\r\nX-Injected: 1"])
        }
        let file = try #require(try ContainerCredentialsEndpoint.resolve(environment: [
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://[::1]:9/x", "AWS_CONTAINER_AUTHORIZATION_TOKEN": "t",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "/var/run/token"]))
        guard case .file(let path)? = file.authorization else { Issue.record("the token file wins over the token"); return }
        #expect(path == "/var/run/token")
        #expect(try ContainerCredentialsEndpoint.resolve(environment: [:]) == nil)
    }

    @Test func environmentKeysComeFirstAndGoTogether() throws {
        let provider = try #require(try AWSCredentialProvider.resolve(environment: [
            "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "token",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/x"]))
        #expect(provider.current() == AWSCredentials(accessKeyId: "AKID", secretAccessKey: "secret", sessionToken: "token"))
        #expect(!"\(provider.current()!)".contains("secret"))
        #expect(throws: AWSConfigurationError.self) { try AWSCredentialProvider.resolve(environment: ["AWS_ACCESS_KEY_ID": "AKID"]) }
    }

    @Test func parsesTheEndpointsAnswer() throws {
        let body = Array(#"{"RoleArn":"arn:aws:iam::1:role/x","AccessKeyId":"ASIA1","SecretAccessKey":"s","Token":"t","Expiration":"2026-12-05T23:00:00Z"}"#.utf8)
        let credentials = try ContainerCredentialsEndpoint.parse(body)
        #expect(credentials.accessKeyId == "ASIA1" && credentials.sessionToken == "t")
        #expect(credentials.expiration == AWSTime.parse("2026-12-05T23:00:00Z"))
        #expect(throws: AWSError.self) { try ContainerCredentialsEndpoint.parse(Array(#"{"AccessKeyId":"A"}"#.utf8)) }
        #expect(throws: AWSError.self) { try ContainerCredentialsEndpoint.parse(Array("<html>".utf8)) }
    }

    /// The real client over a loopback socket: the endpoint is called with the token, and the
    /// provider's credentials are what it served.
    @Test func fetchesOverRealSocketsWithTheAuthorizationToken() throws {
        let expiration = AWSTime.now() + 3600
        let server = try OneShotServer(response: """
            HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: LENGTH\r\n\r\nBODY
            """, body: #"{"AccessKeyId":"ASIALOOP","SecretAccessKey":"loop-secret","Token":"loop-token","Expiration":"\#(Timestamp.rfc3339(milliseconds: expiration * 1000))"}"#)
        let provider = try #require(try AWSCredentialProvider.resolve(environment: [
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:\(server.port)/creds", "AWS_CONTAINER_AUTHORIZATION_TOKEN": "Bearer abc"]))
        try provider.start()
        #expect(provider.current()?.accessKeyId == "ASIALOOP")
        #expect(provider.current()?.expiration == expiration)
        let request = server.request()
        #expect(request.hasPrefix("GET /creds HTTP/1.1\r\n"))
        #expect(request.contains("\r\nAuthorization: Bearer abc\r\n"))
        #expect(request.contains("\r\nHost: 127.0.0.1:\(server.port)\r\n"))
    }

    @Test func aServerThatNeverAnswersTimesOut() throws {
        let server = try OneShotServer(response: nil, body: "")
        var client = HTTPClient()
        client.limits.totalTimeout = .milliseconds(300)
        let error = try #require(throws: HTTPClientError.self) {
            try client.perform(HTTPClientRequest(method: "GET", url: HTTPClientURL("http://127.0.0.1:\(server.port)/")!))
        }
        #expect(error.kind == .timeout)
    }

    @Test func tlsToAPlainServerFailsAsTLS() throws {
        // It answers in plain text at once: the client's handshake reads an HTTP status line.
        let server = try OneShotServer(response: "HTTP/1.1 200 OK\r\nContent-Length: LENGTH\r\n\r\nBODY", body: "plain", answerAtOnce: true)
        let error = try #require(throws: HTTPClientError.self) {
            try HTTPClient().perform(HTTPClientRequest(method: "GET", url: HTTPClientURL("https://127.0.0.1:\(server.port)/")!))
        }
        #expect(error.kind == .tls)
    }
}

/// Accepts one connection on 127.0.0.1, reads the request head, answers `response` (LENGTH and
/// BODY replaced) or nothing, and holds the connection until the end of the test.
final class OneShotServer: Sendable {
    let port: Int
    private let listener: Int32
    private let received = Mutex("")
    private let done = DispatchSemaphore(value: 0)

    init(response: String?, body: String, answerAtOnce: Bool = false) throws {
        let (fd, port) = try Socket.listen(host: "127.0.0.1", port: 0, backlog: 4, reusePort: false)
        listener = fd
        self.port = port
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
        let reply = response.map { $0.replacingLength(body) }
        DispatchQueue.global().async { [self] in
            let client = accept(fd, nil, nil)
            guard client >= 0 else { done.signal(); return }
            var request: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !answerAtOnce && !request.ends(with: Array("\r\n\r\n".utf8)) {
                let n = recv(client, &buffer, buffer.count, 0)
                if n <= 0 { break }
                request += buffer[..<n]
            }
            received.withLock { $0 = String(decoding: request, as: UTF8.self) }
            done.signal()
            if let reply {
                _ = Array(reply.utf8).withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                Glibc.close(client)
            } else {
                usleep(2_000_000)
                Glibc.close(client)
            }
        }
    }

    func request() -> String {
        _ = done.wait(timeout: .now() + 5)
        return received.withLock { $0 }
    }

    deinit { Glibc.close(listener) }
}

extension String {
    fileprivate func replacingLength(_ body: String) -> String {
        var text = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: "LENGTH") {
            text += rest[..<range.lowerBound] + String(body.utf8.count)
            rest = rest[range.upperBound...]
        }
        text += rest
        return text.replacingBody(body)
    }

    private func replacingBody(_ body: String) -> String {
        guard let range = firstRange(of: "BODY") else { return self }
        return String(self[..<range.lowerBound]) + body + String(self[range.upperBound...])
    }
}

extension Array where Element == UInt8 {
    fileprivate func ends(with suffix: [UInt8]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }
}

