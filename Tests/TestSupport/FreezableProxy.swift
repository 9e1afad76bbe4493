import Glibc
import Synchronization

/// A loopback TCP proxy that the test can freeze: while frozen it forwards nothing in either
/// direction and accepts nothing, but its sockets stay open, so the kernel still acknowledges
/// what is sent to it. That is the drill's "proxy stopped with SIGSTOP" (a frozen network path
/// where TCP keepalives and tcp_user_timeout cannot fire), without stopping a process.
public final class FreezableProxy: @unchecked Sendable {
    public let port: Int
    private let listener: Int32
    private let targetPort: Int
    private let frozen = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)
    private let sockets = Mutex<[Int32]>([])
    /// Connections accepted so far (each new database connection or cancel request is one).
    public var accepted: Int { acceptedCount.load(ordering: .relaxed) }
    private let acceptedCount = Atomic<Int>(0)

    public init(targetPort: Int) throws {
        self.targetPort = targetPort
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 128) == 0 else { throw TestSetupError.missing("proxy: cannot listen (errno \(errno))") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        spawnThread { [self] in acceptLoop() }
    }

    public func freeze() { frozen.store(true, ordering: .releasing) }
    public func thaw() { frozen.store(false, ordering: .releasing) }

    public func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        Glibc.shutdown(listener, Int32(SHUT_RDWR))
        for fd in sockets.withLock({ $0 }) { Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
    }

    deinit { stop() }

    private func waitWhileFrozen() {
        while frozen.load(ordering: .acquiring) && !stopped.load(ordering: .relaxed) { usleep(5_000) }
    }

    private func acceptLoop() {
        while !stopped.load(ordering: .relaxed) {
            waitWhileFrozen()
            let client = accept(listener, nil, nil)
            guard client >= 0 else {
                if stopped.load(ordering: .relaxed) { return }
                continue
            }
            acceptedCount.add(1, ordering: .relaxed)
            waitWhileFrozen()
            let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(targetPort).bigEndian
            let rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard rc == 0 else { close(client); close(upstream); continue }
            sockets.withLock { $0 += [client, upstream] }
            spawnThread { [self] in pump(from: client, to: upstream) }
            spawnThread { [self] in pump(from: upstream, to: client) }
        }
    }

    /// Copies one direction; data read while frozen is held until the thaw.
    private func pump(from source: Int32, to destination: Int32) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(source, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            waitWhileFrozen()
            var offset = 0
            while offset < n {
                let sent = buffer.withUnsafeBytes { send(destination, $0.baseAddress! + offset, n - offset, Int32(MSG_NOSIGNAL)) }
                if sent <= 0 { break }
                offset += sent
            }
            if offset < n { break }
        }
        Glibc.shutdown(destination, Int32(SHUT_RDWR))
        Glibc.shutdown(source, Int32(SHUT_RDWR))
    }
}
