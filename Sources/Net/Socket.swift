import CLinux
import Glibc

/// Thin wrappers over the socket calls the loops make. Every socket is non-blocking and close-on-exec.
public enum Socket {
    /// Opens a listening TCP socket. `reusePort` lets each loop own its own listener on the same
    /// port (SO_REUSEPORT): the kernel spreads new connections over them without a shared accept lock.
    public static func listen(host: String, port: Int, backlog: Int32 = 4096, reusePort: Bool) throws -> (fd: Int32, port: Int) {
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &result)
        guard rc == 0, let info = result else {
            throw SocketError.failed(call: "getaddrinfo(\(host)): \(String(cString: gai_strerror(rc)))", errno: 0)
        }
        defer { freeaddrinfo(result) }

        let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError.fromErrno("socket") }
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        if reusePort {
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, socklen_t(MemoryLayout<Int32>.size))
        }
        if info.pointee.ai_family == AF_INET6 {
            // "::" should take IPv4 too, as nginx's `listen [::]:80 ipv6only=off` does.
            var off: Int32 = 0
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &off, socklen_t(MemoryLayout<Int32>.size))
        }
        guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            let error = SocketError.fromErrno("bind(\(host):\(port))")
            Glibc.close(fd)
            throw error
        }
        guard Glibc.listen(fd, backlog) == 0 else {
            let error = SocketError.fromErrno("listen")
            Glibc.close(fd)
            throw error
        }
        return (fd, try localPort(fd))
    }

    /// Fails with EADDRINUSE when anything listens on `host:port`, including a socket with
    /// SO_REUSEPORT (which our own `listen(reusePort: true)` would silently share: a second
    /// process on the same port would take half the connections). A probe without SO_REUSEPORT
    /// cannot bind beside any listener; it is closed at once.
    public static func ensurePortFree(host: String, port: Int) throws {
        guard port != 0 else { return }
        let probe = try listen(host: host, port: port, backlog: 1, reusePort: false)
        Glibc.close(probe.fd)
    }

    /// The port a socket is bound to (for `port: 0` in tests).
    public static func localPort(_ fd: Int32) throws -> Int {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard rc == 0 else { throw SocketError.fromErrno("getsockname") }
        return PeerAddress(storage).port
    }

    /// Accepts one connection, already non-blocking, with TCP_NODELAY set (responses are written
    /// whole; Nagle would only delay the last segment).
    public static func accept(_ listener: Int32) throws(SocketError) -> (fd: Int32, peer: PeerAddress) {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let fd = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                clinux_accept4(listener, $0, &length, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
            }
        }
        guard fd >= 0 else { throw SocketError.fromErrno("accept4") }
        var on: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
        return (fd, PeerAddress(storage))
    }

    /// Fixes the kernel send buffer (SO_SNDBUF; Linux reserves twice `bytes` and stops
    /// auto-tuning it): bounds what a client that does not read holds in kernel memory.
    public static func setSendBuffer(_ fd: Int32, bytes: Int) {
        var size = Int32(clamping: bytes)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Reads into `buffer`; returns 0 at end of stream. `recv`, not `read`: the socket call skips
    /// the file layer `read` goes through (`vfs_read`, `sock_read_iter`, the file-permission
    /// hook: ~2 % of the server's kernel time under `POST /todos`, perf against the Rust anchor,
    /// which reads with `recvfrom`).
    @inline(__always)
    public static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SocketError) -> Int {
        while true {
            let n = recv(fd, buffer.baseAddress, buffer.count, 0)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw SocketError.fromErrno("recv")
        }
    }

    /// Writes what the socket takes now. MSG_NOSIGNAL: a peer gone must be an error, not SIGPIPE.
    @inline(__always)
    public static func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(SocketError) -> Int {
        while true {
            let n = send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw SocketError.fromErrno("send")
        }
    }

    /// Closes with an RST instead of a FIN when `reset` is true (SO_LINGER 0): used for connections
    /// we abandon, so they do not sit in TIME_WAIT on our side.
    public static func close(_ fd: Int32, reset: Bool = false) {
        if reset {
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        }
        Glibc.close(fd)
    }

    /// Stops sending (FIN) while still reading: lets the peer read our final error response before
    /// the close, instead of losing it to an RST (RFC 9112 §9.6 "tear-down").
    public static func shutdownWrite(_ fd: Int32) {
        Glibc.shutdown(fd, Int32(SHUT_WR))
    }
}

/// The TCP peer of a connection, kept as bytes; formatted only when someone asks.
public struct PeerAddress: Sendable, Hashable, CustomStringConvertible {
    public enum Family: Sendable, Hashable { case v4, v6, other }
    public var family: Family
    /// Address bytes in network order: 4 for IPv4, 16 for IPv6.
    public var bytes: [UInt8]
    public var port: Int

    init(_ storage: sockaddr_storage) {
        var storage = storage
        switch Int32(storage.ss_family) {
        case AF_INET:
            let sin = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in.self) }
            self.family = .v4
            self.bytes = withUnsafeBytes(of: sin.sin_addr.s_addr) { Array($0) }
            self.port = Int(UInt16(bigEndian: sin.sin_port))
        case AF_INET6:
            let sin6 = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in6.self) }
            self.family = .v6
            self.bytes = withUnsafeBytes(of: sin6.sin6_addr) { Array($0) }
            self.port = Int(UInt16(bigEndian: sin6.sin6_port))
        default:
            self.family = .other
            self.bytes = []
            self.port = 0
        }
    }

    public var description: String {
        switch family {
        case .v4: return bytes.map(String.init).joined(separator: ".")
        case .v6:
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            bytes.withUnsafeBytes { _ = inet_ntop(AF_INET6, $0.baseAddress, &text, socklen_t(text.count)) }
            return String(decoding: text.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        case .other: return "unknown"
        }
    }
}
