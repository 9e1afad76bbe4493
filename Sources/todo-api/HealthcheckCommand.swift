import Glibc
import Net
import TodoAPI

/// `todo-api healthcheck [--url http://127.0.0.1:8000/health] [--timeout 2s]`: the Docker
/// HEALTHCHECK and ECS container health check, so the image needs no curl. One GET over a plain
/// socket, the whole exchange bounded by the timeout; exit 0 on a 200, 1 on anything else, one
/// line of output either way (Docker keeps the last lines in `docker inspect`).
struct HealthcheckCommand {
    /// `--url`, `--timeout` (ServiceCommandLine.options(for: .healthcheck)).
    let options: [String: String]

    func run() throws {
        // The container's PORT, so a task that moves the service needs no --url of its own; a bad
        // one is refused as `serve` refuses it (not silently replaced by 8000).
        let url: String
        if let given = options["url"] {
            url = given
        } else {
            let text = getenv("PORT").map { String(cString: $0) } ?? "8000"
            guard let port = Int(text), (1...65535).contains(port) else {
                throw ConfigurationError(setting: "PORT", value: text, help: "a TCP port from 1 to 65535 (or give --url).")
            }
            url = "http://127.0.0.1:\(port)/health"
        }
        let timeout = options["timeout"] ?? "2s"
        guard let budget = TimeSpan(parsing: timeout), budget.nanoseconds > 0 else {
            throw ConfigurationError(setting: "--timeout", value: timeout, help: "a duration such as 2s or 500ms.")
        }
        guard let target = HealthTarget(url) else {
            throw ConfigurationError(setting: "--url", value: url, help: "an http://host[:port]/path URL (TLS is not supported here).")
        }
        switch HealthProbe.check(target, deadline: MonotonicTime.now() + budget) {
        case .healthy(let status):
            print("healthy: \(url) answered \(status)")
        case .unhealthy(let reason):
            print("unhealthy: \(url): \(reason)")
            Glibc.exit(1)
        }
    }
}

/// Host, port and path of an `http://` URL.
struct HealthTarget {
    let host: String
    let port: Int
    let path: String

    init?(_ url: String) {
        guard url.hasPrefix("http://") else { return nil }
        let rest = url.dropFirst("http://".count)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        path = slash == rest.endIndex ? "/" : String(rest[slash...])
        var hostPart = Substring(authority)
        var portNumber = 80
        if authority.hasPrefix("[") {  // [::1]:8000
            guard let close = authority.firstIndex(of: "]") else { return nil }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") { guard let p = Int(after.dropFirst()) else { return nil }; portNumber = p }
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = authority[..<colon]
            guard let p = Int(authority[authority.index(after: colon)...]) else { return nil }
            portNumber = p
        }
        guard !hostPart.isEmpty, (1...65535).contains(portNumber),
              !path.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else { return nil }
        host = String(hostPart)
        port = portNumber
    }
}

enum HealthProbe {
    enum Outcome { case healthy(Int), unhealthy(String) }

    static func check(_ target: HealthTarget, deadline: MonotonicTime) -> Outcome {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(target.host, String(target.port), &hints, &list) == 0, let first = list else {
            return .unhealthy("cannot resolve \(target.host)")
        }
        defer { freeaddrinfo(list) }
        let fd = socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .unhealthy("socket: \(String(cString: strerror(errno)))") }
        defer { Glibc.close(fd) }
        if connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) != 0 && errno != EINPROGRESS {
            return .unhealthy("connect: \(String(cString: strerror(errno)))")
        }
        guard wait(fd, for: Int16(POLLOUT), until: deadline) else { return .unhealthy("timed out connecting") }
        var soError: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length)
        if soError != 0 { return .unhealthy("connect: \(String(cString: strerror(soError)))") }

        let hostHeader = target.host.contains(":") ? "[\(target.host)]:\(target.port)" : "\(target.host):\(target.port)"
        let request = Array("GET \(target.path) HTTP/1.1\r\nHost: \(hostHeader)\r\nUser-Agent: todo-api-healthcheck\r\nConnection: close\r\n\r\n".utf8)
        var sent = 0
        while sent < request.count {
            guard wait(fd, for: Int16(POLLOUT), until: deadline) else { return .unhealthy("timed out sending") }
            let n = request.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno != EAGAIN && errno != EINTR { return .unhealthy("send: \(String(cString: strerror(errno)))") }
            if n > 0 { sent += n }
        }
        // The status line is all we need: "HTTP/1.1 200 OK\r\n".
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 512)
        while !received.contains(UInt8(ascii: "\n")) && received.count < 8192 {
            guard wait(fd, for: Int16(POLLIN), until: deadline) else { return .unhealthy("timed out waiting for the response") }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { break }
            if n < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                return .unhealthy("recv: \(String(cString: strerror(errno)))")
            }
            received += buffer[0..<n]
        }
        let line = String(decoding: received.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        let parts = line.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            return .unhealthy("not an HTTP response")
        }
        return status == 200 ? .healthy(status) : .unhealthy("status \(status)")
    }

    /// poll(2) for `events` until the deadline; false on timeout.
    private static func wait(_ fd: Int32, for events: Int16, until deadline: MonotonicTime) -> Bool {
        while true {
            let remaining = deadline - MonotonicTime.now()
            guard remaining.nanoseconds > 0 else { return false }
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let n = poll(&entry, 1, Int32(max(1, remaining.milliseconds)))
            if n > 0 { return true }
            if n < 0 && errno == EINTR { continue }
            if n == 0 { return false }
            return false
        }
    }
}
