import Logging
import Net
import Observability

/// The HTTP server's state on one loop: its listener, its connections, its Date cache. Loop-owned.
final class HTTPLoopContext {
    let loop: EventLoop
    let configuration: HTTPServerConfiguration
    let router: Router
    let counters: HTTPServerCounters
    let logger: Logger
    var dateCache = DateCache()
    var metrics = HTTPMetrics()
    /// Where this loop renders access lines before the sink copies them: reused, so a line costs
    /// no allocation.
    var accessLine = JSONWriter(capacity: 1024)
    /// Security events (component `security`), e.g. refused malformed requests.
    let securityLog = Logger(label: "security")
    private(set) var draining = false
    /// The connection deadlines, built once (not per connection).
    let timeouts: ConnectionTimeouts
    private var refusedForAddressCount = 0
    private var nextAddressRefusalLog = MonotonicTime(nanoseconds: 0)
    private var connections: [Int32: HTTPConnection] = [:]
    private var listener: Listener?

    init(loop: EventLoop, configuration: HTTPServerConfiguration, router: Router,
         counters: HTTPServerCounters, logger: Logger) {
        self.loop = loop
        self.configuration = configuration
        self.router = router
        self.counters = counters
        self.logger = logger
        self.timeouts = configuration.connectionTimeouts
    }

    func startListening(fd: Int32) {
        loop.assertInLoop()
        let listener = Listener(fd: fd, context: self)
        do {
            listener.generation = try loop.register(fd: fd, interest: .read, handler: listener)
            self.listener = listener
        } catch {
            logger.critical("cannot watch the listening socket", metadata: ["error": "\(error)"])
            Socket.close(fd)
        }
    }

    func accepted(fd: Int32, peer: PeerAddress) {
        // One address may not take the whole table (a client behind a trusted proxy is counted
        // by the proxy's address, so proxies are exempt). Checked first: a refused client must not
        // cost another client its idle connection.
        let capsAddress = configuration.maxConnectionsPerAddress > 0 && !(configuration.isExemptFromAddressLimit?(peer) ?? false)
        if capsAddress && !counters.addressOpened(peer.bytes, limit: configuration.maxConnectionsPerAddress) {
            refusedForAddress(peer)
            Socket.close(fd, reset: true)
            return
        }
        // Bounded. At the limit, the longest-idle keep-alive connection of this loop is closed to
        // make room (nginx does the same when it runs out of connections: an idle keep-alive
        // connection costs its client only a reconnect, a refused one costs a failed request);
        // with none idle, the new connection is refused at once rather than queued.
        guard counters.connectionOpened(limit: configuration.maxConnections)
                || (closeLongestIdle() && counters.connectionOpened(limit: configuration.maxConnections)) else {
            if capsAddress { counters.addressClosed(peer.bytes) }
            Socket.close(fd, reset: true)
            return
        }
        if configuration.sendBufferBytes > 0 {
            Socket.setSendBuffer(fd, bytes: configuration.sendBufferBytes)
        }
        let connection = HTTPConnection(fd: fd, peer: peer, context: self)
        connection.countedAgainstAddress = capsAddress
        do {
            connection.generation = try loop.register(fd: fd, interest: HTTPConnection.readInterest, handler: connection)
        } catch {
            counters.connectionClosed()
            if capsAddress { counters.addressClosed(peer.bytes) }
            Socket.close(fd, reset: true)
            return
        }
        connections[fd] = connection
        connection.start()
        if draining { connection.drain() }
    }

    /// Closes this loop's longest-idle connection; false when none is idle. A scan, but only at
    /// the connection limit.
    private func closeLongestIdle() -> Bool {
        var oldest: HTTPConnection?
        var oldestSince = MonotonicTime.distantFuture
        for connection in connections.values {
            if let since = connection.idleSince, since < oldestSince {
                oldest = connection
                oldestSince = since
            }
        }
        guard let oldest else { return false }
        oldest.close(reset: false)
        return true
    }

    func connectionClosed(_ connection: HTTPConnection) {
        if connections[connection.fd] === connection {
            connections[connection.fd] = nil
        }
        counters.connectionClosed()
        if connection.countedAgainstAddress { counters.addressClosed(connection.peer.bytes) }
    }

    /// A security event, at most once per second per loop: a flood of refusals must not flood
    /// the log too.
    private func refusedForAddress(_ peer: PeerAddress) {
        refusedForAddressCount += 1
        guard loop.now >= nextAddressRefusalLog else { return }
        nextAddressRefusalLog = loop.now + .seconds(1)
        securityLog.warning("connection refused: too many from one address", metadata: [
            "event": "connection_limit_per_address", "clientIp": .string(peer.description),
            "limit": .stringConvertible(configuration.maxConnectionsPerAddress),
            "refusedSoFar": .stringConvertible(refusedForAddressCount),
        ])
    }

    /// Stop accepting, close idle connections, let busy ones finish with `Connection: close`.
    func beginDrain() {
        loop.assertInLoop()
        guard !draining else { return }
        draining = true
        listener?.close()
        listener = nil
        for connection in Array(connections.values) { connection.drain() }
    }

    /// Close everything now (drain timeout passed, or a second signal).
    func closeAll() {
        listener?.close()
        listener = nil
        for connection in Array(connections.values) { connection.close(reset: true) }
    }
}
