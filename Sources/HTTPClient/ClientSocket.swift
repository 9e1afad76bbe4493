import Glibc
import Net

/// One outgoing TCP connection with every operation bounded by a deadline: non-blocking socket,
/// `poll` for readiness. Blocking only the calling thread (the client never runs on a loop).
final class ClientSocket {
    let fd: Int32

    private init(fd: Int32) { self.fd = fd }

    deinit { Glibc.close(fd) }

    /// Resolves `host` and connects to the first address that answers before `deadline`.
    static func connect(host: String, port: Int, deadline: MonotonicTime) throws(HTTPClientError) -> ClientSocket {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        // getaddrinfo has no timeout of its own; the calls this client makes go to the link-local
        // ECS endpoint, loopback, or AWS's regional names that the VPC resolver answers at once.
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw HTTPClientError(.resolve, "cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = HTTPClientError(.connect, "cannot connect to \(host):\(port)")
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            entry = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { continue }
            let socket = ClientSocket(fd: fd)
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            if Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 { return socket }
            guard errno == EINPROGRESS else {
                lastError = HTTPClientError(.connect, "cannot connect to \(host):\(port): \(String(cString: strerror(errno)))")
                continue
            }
            do {
                try socket.wait(for: Int16(POLLOUT), until: deadline, doing: "connecting to \(host):\(port)")
            } catch {
                if error.kind == .timeout { throw error }
                lastError = error
                continue
            }
            var code: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length)
            if code == 0 { return socket }
            lastError = HTTPClientError(.connect, "cannot connect to \(host):\(port): \(String(cString: strerror(code)))")
        }
        throw lastError
    }

    /// Waits until the socket is ready for `events` (POLLIN/POLLOUT) or the deadline passes.
    func wait(for events: Int16, until deadline: MonotonicTime, doing what: String) throws(HTTPClientError) {
        while true {
            let remaining = deadline - MonotonicTime.now()
            guard remaining.nanoseconds > 0 else { throw HTTPClientError(.timeout, "timed out \(what)") }
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let rc = poll(&entry, 1, Int32(clamping: max(1, remaining.milliseconds)))
            if rc > 0 { return }
            if rc < 0 && errno != EINTR {
                throw HTTPClientError(.connect, "poll failed \(what): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Sends every byte by the deadline.
    func send(_ bytes: [UInt8], until deadline: MonotonicTime) throws(HTTPClientError) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n > 0 { offset += n; continue }
            if n < 0 && (errno == EAGAIN || errno == EINTR) {
                try wait(for: Int16(POLLOUT), until: deadline, doing: "sending the request")
                continue
            }
            throw HTTPClientError(.closed, "sending the request failed: \(String(cString: strerror(errno)))")
        }
    }

    /// Reads what is available (at least one byte), or 0 at the end of the stream.
    func receive(into buffer: UnsafeMutableRawBufferPointer, until deadline: MonotonicTime) throws(HTTPClientError) -> Int {
        while true {
            let n = recv(fd, buffer.baseAddress, buffer.count, 0)
            if n >= 0 { return n }
            if errno == EAGAIN || errno == EINTR {
                try wait(for: Int16(POLLIN), until: deadline, doing: "waiting for the response")
                continue
            }
            throw HTTPClientError(.closed, "reading the response failed: \(String(cString: strerror(errno)))")
        }
    }
}
