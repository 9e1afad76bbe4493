import Glibc
import Logging
import Net
import Synchronization

/// The HTTP/1.1 server: one listener and one `HTTPLoopContext` per loop of the group.
public final class HTTPServer: Sendable {
    public let configuration: HTTPServerConfiguration
    private let group: EventLoopGroup
    private let contexts: [LoopBound<HTTPLoopContext>]
    private let counters = HTTPServerCounters()
    private let logger: Logger

    public init(configuration: HTTPServerConfiguration, group: EventLoopGroup, router: Router, logger: Logger) {
        self.configuration = configuration
        self.group = group
        self.logger = logger
        let counters = self.counters
        self.contexts = group.loops.map {
            LoopBound(HTTPLoopContext(loop: $0, configuration: configuration, router: router, counters: counters, logger: logger), loop: $0)
        }
    }

    /// Binds one listening socket per loop (SO_REUSEPORT) on the calling thread, so that a bad
    /// address fails here, and hands each to its loop. Returns the bound port (useful with port 0).
    @discardableResult
    public func start() throws -> Int {
        try Socket.ensurePortFree(host: configuration.host, port: configuration.port)
        let first = try Socket.listen(host: configuration.host, port: configuration.port, reusePort: true)
        var fds = [first.fd]
        do {
            for _ in 1..<max(contexts.count, 1) {
                fds.append(try Socket.listen(host: configuration.host, port: first.port, reusePort: true).fd)
            }
        } catch {
            fds.forEach { Socket.close($0) }
            throw error
        }
        for (context, fd) in zip(contexts, fds) {
            context.loop.execute { context.value.startListening(fd: fd) }
        }
        return first.port
    }

    public var openConnections: Int { counters.openConnections }

    /// Graceful shutdown, step one (callable from any thread): stop accepting, close idle
    /// connections, finish in-flight requests with `Connection: close`.
    public func beginDrain() {
        for context in contexts {
            context.loop.execute { context.value.beginDrain() }
        }
    }

    /// Blocks the calling thread (never a loop) until every connection is closed or `timeout`
    /// passes; returns whether the drain completed.
    public func waitUntilDrained(timeout: TimeSpan, interrupted: () -> Bool = { false }) -> Bool {
        let deadline = MonotonicTime.now() + timeout
        while counters.openConnections > 0 {
            if MonotonicTime.now() >= deadline || interrupted() { return false }
            usleep(10_000)
        }
        return true
    }

    /// Request metrics of every loop, added up; `completion` runs on some loop.
    public func metrics(_ completion: @escaping @Sendable (HTTPMetrics) -> Void) {
        let box = MetricsGathering(remaining: contexts.count, completion: completion)
        for context in contexts {
            context.loop.execute { box.add(context.value.metrics) }
        }
    }

    /// Closes every connection at once.
    public func closeAll() {
        for context in contexts {
            context.loop.execute { context.value.closeAll() }
        }
    }
}

/// Adds up per-loop metrics as each loop reports; the last one calls `completion`.
final class MetricsGathering: Sendable {
    private let state: Mutex<(total: HTTPMetrics, remaining: Int)>
    private let completion: @Sendable (HTTPMetrics) -> Void

    init(remaining: Int, completion: @escaping @Sendable (HTTPMetrics) -> Void) {
        state = Mutex((HTTPMetrics(), remaining))
        self.completion = completion
    }

    func add(_ metrics: HTTPMetrics) {
        let done: HTTPMetrics? = state.withLock { state in
            state.total.merge(metrics)
            state.remaining -= 1
            return state.remaining == 0 ? state.total : nil
        }
        if let done { completion(done) }
    }
}
