import Glibc
import HTTP
import Logging
import Net

/// A blocking TCP client for live tests: real sockets, with a receive timeout so that a server bug
/// fails the test instead of hanging it.
public final class TestClient {
    public let fd: Int32
    private var buffer: [UInt8] = []

    public init(port: Int, receiveTimeout: TimeSpan = .seconds(5)) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            close(fd)
            throw TestClientError.connectFailed(errno)
        }
        var tv = timeval(tv_sec: Int(receiveTimeout.nanoseconds / 1_000_000_000),
                         tv_usec: Int(receiveTimeout.nanoseconds % 1_000_000_000 / 1000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    public func send(_ text: String) throws { try send(Array(text.utf8)) }

    public func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw TestClientError.sendFailed(errno) }
            offset += n
        }
    }

    /// Reads more bytes; false at end of stream, throws on timeout or reset.
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 {
            throw errno == EAGAIN ? TestClientError.timedOut : TestClientError.receiveFailed(errno)
        }
        buffer += chunk[0..<n]
        return n > 0
    }

    /// Reads one response. `head: true` for a response to HEAD (no body despite Content-Length).
    public func readResponse(head: Bool = false) throws -> TestResponse {
        while true {
            if let end = findHeadEnd() {
                let headText = String(decoding: buffer[0..<end], as: UTF8.self)
                var lines = headText.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
                let statusLine = lines.removeFirst()
                let status = Int(statusLine.split(separator: " ")[1])!
                var headers: [(String, String)] = []
                for line in lines where !line.isEmpty {
                    let colon = line.firstIndex(of: ":")!
                    headers.append((String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingCharacters(in: " ")))
                }
                var response = TestResponse(status: status, headers: headers, body: [])
                let length = (head || status == 204 || status == 304 || status < 200) ? 0 : Int(response.header("Content-Length") ?? "0")!
                while buffer.count < end + 4 + length {
                    guard try fill() else { throw TestClientError.closedEarly }
                }
                response.body = Array(buffer[(end + 4)..<(end + 4 + length)])
                buffer.removeFirst(end + 4 + length)
                return response
            }
            guard try fill() else { throw TestClientError.closedEarly }
        }
    }

    /// True when the server has closed the connection (EOF or reset) with nothing more to read.
    public func isClosedByServer() -> Bool {
        do {
            while try fill() {}
            return true
        } catch TestClientError.receiveFailed {
            return true
        } catch {
            return false
        }
    }

    private func findHeadEnd() -> Int? {
        guard buffer.count >= 4 else { return nil }
        for i in 0...(buffer.count - 4) where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 {
            return i
        }
        return nil
    }
}

public struct TestResponse {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    public var text: String { String(decoding: body, as: UTF8.self) }
}

public enum TestClientError: Error {
    case connectFailed(Int32), sendFailed(Int32), receiveFailed(Int32), timedOut, closedEarly
}

extension String {
    public func trimmingCharacters(in set: Character) -> String {
        String(drop(while: { $0 == set }).reversed().drop(while: { $0 == set }).reversed())
    }
}

/// A real server on port 0 with short timeouts and a few test routes.
public final class LiveServer {
    public let group: EventLoopGroup
    public let server: HTTPServer
    public let port: Int

    /// The test routes below, or `router` when given.
    /// `group`: share loops with something else (a database); the server then starts none itself.
    public init(router given: Router? = nil, group shared: EventLoopGroup? = nil,
                configure: (inout HTTPServerConfiguration) -> Void = { _ in }) throws {
        var configuration = HTTPServerConfiguration()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        configure(&configuration)
        var router = Router()
        router.add(.get, "/health", .sync { _ in .json(.ok, Array(#"{"status":"ok"}"#.utf8)) })
        router.add(.post, "/echo", .sync { request in HTTPResponse(status: .ok, contentType: "application/octet-stream", body: request.body) })
        router.add(.get, "/items/:id", .sync { request in .json(.ok, Array("{\"id\":\"\(request.parameters["id"]!)\"}".utf8)) })
        router.add(.get, "/slow", .async { request in
            let millis = Int64(request.head.query?.split(separator: "=").last ?? "300") ?? 300
            let loop = EventLoop.current!
            await loop.sleep(.milliseconds(millis))
            return .json(.ok, Array(#"{"slow":true}"#.utf8))
        })
        // Callback handlers: answered from a timer on the loop, or (a handler bug) never.
        router.add(.get, "/later/:id", .callback { request, respond in
            let loop = EventLoop.current!
            let id = request.parameters["id"]!
            loop.schedule(LoopTimer { respond(.json(.ok, Array("{\"later\":\"\(id)\"}".utf8))) }, at: loop.now + .milliseconds(50))
        })
        router.add(.get, "/unanswered", .callback { _, _ in })
        router.add(.get, "/at-once", .callback { _, respond in respond(.json(.ok, Array(#"{"atOnce":true}"#.utf8))) })
        router.add(.get, "/big", .sync { _ in HTTPResponse(status: .ok, body: [UInt8](repeating: 65, count: 1 << 20)) })
        if let given { router = given }
        group = try shared ?? EventLoopGroup(count: 2)
        server = HTTPServer(configuration: configuration, group: group, router: router, logger: Logger(label: "test"))
        port = try server.start()
        try group.start()
    }

    private var stopped = false

    /// Accepting is asynchronous: wait until the server has taken `count` connections.
    public func waitForOpenConnections(_ count: Int) -> Bool {
        for _ in 0..<500 {
            if server.openConnections >= count { return true }
            usleep(10_000)
        }
        return false
    }

    public func stop() {
        guard !stopped else { return }
        stopped = true
        server.closeAll()
        _ = server.waitUntilDrained(timeout: .seconds(2))
        group.shutdown()
    }

    deinit { stop() }
}

extension TestClient {
    /// A response if one is already readable, without waiting.
    public static func peek(_ client: TestClient) throws -> TestResponse? {
        guard client.hasData else { return nil }
        return try client.readResponse()
    }

    /// True when bytes (or the end of the stream) are waiting to be read.
    public var hasData: Bool {
        var pollfd = Glibc.pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&pollfd, 1, 0) > 0
    }
}
