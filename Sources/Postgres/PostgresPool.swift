import Logging
import Net

/// The connections of one event loop to one database endpoint, and the queries waiting for them.
///
/// Loop-owned: a handler on loop i only ever uses pool i, so no lock is taken per query
/// (thread-per-core; the architecture's recommended per-loop connections). Picking a connection:
/// the ready, non-retiring one with the fewest queries in flight, below the pipeline depth; when
/// every connection is busy and the pool is below its maximum, another is opened.
final class PostgresPool: PostgresConnectionDelegate {
    let loop: EventLoop
    let settings: PostgresConnectionSettings
    let configuration: PostgresPoolConfiguration
    let limits: (min: Int, max: Int)
    let logger: Logger
    /// Called when this endpoint's connections should all be replaced (read-only writer after a
    /// failover, or a lost connection); the database forwards it to every loop's pool.
    var onRecycleNeeded: (() -> Void)?

    private var connections: [PostgresConnection] = []
    private var waiters = FIFO<Waiter>()
    private var nextID = 0
    private var consecutiveFailures = 0
    private var lastFailure: PostgresError?
    private var isShutdown = false
    private lazy var reconnectTimer = LoopTimer { [unowned self] in self.ensureConnections() }
    private lazy var maintenanceTimer = LoopTimer { [unowned self] in self.maintain() }

    private final class Waiter {
        let query: PostgresQuery
        let completion: (Result<PostgresResult, PostgresError>) -> Void
        let since: MonotonicTime
        var timer: LoopTimer?
        var done = false

        init(query: PostgresQuery, completion: @escaping (Result<PostgresResult, PostgresError>) -> Void, since: MonotonicTime) {
            self.query = query
            self.completion = completion
            self.since = since
        }
    }

    init(loop: EventLoop, settings: PostgresConnectionSettings, configuration: PostgresPoolConfiguration,
         loops: Int, logger: Logger) {
        self.loop = loop
        self.settings = settings
        self.configuration = configuration
        self.limits = configuration.perLoop(loops: loops)
        self.logger = logger
    }

    // MARK: Counts

    // Counted by walking the (few) connections: no array is built on the query path.
    private var hasUsable: Bool { connections.contains { $0.state == .ready && !$0.retiring } }
    private var opening: Int {
        var count = 0
        for connection in connections where connection.state == .resolving || connection.state == .connecting { count += 1 }
        return count
    }
    private var activeCount: Int {
        var count = 0
        for connection in connections where !connection.retiring && connection.state != .closed { count += 1 }
        return count
    }

    /// Acquire timeouts since start (the `db_pool_timeouts_total` metric).
    private(set) var timeouts = 0
    /// Query and acquire timings and errors by SQLSTATE, for `/metrics` (loop-owned, summed at scrape).
    private(set) var timings = PostgresTimings()

    var statistics: PostgresPoolStatistics {
        var stats = PostgresPoolStatistics()
        for connection in connections {
            switch connection.state {
            case .ready: if connection.queriesInFlight > 0 { stats.busy += 1 } else { stats.idle += 1 }
            case .resolving, .connecting: stats.opening += 1
            case .closed: break
            }
        }
        stats.waiting = waiters.count
        stats.timeouts = timeouts
        stats.timings = timings
        return stats
    }

    // MARK: Lifecycle

    func start() {
        loop.assertInLoop()
        ensureConnections()
        loop.schedule(maintenanceTimer, at: loop.now + .seconds(1))
    }

    func shutdown() {
        isShutdown = true
        loop.cancel(maintenanceTimer)
        loop.cancel(reconnectTimer)
        for connection in connections { connection.close() }
        connections.removeAll()
        failAllWaiters(PostgresError(.shutdown, message: "the database pool is shutting down"))
    }

    /// Replace every connection: idle ones close now, busy ones after their queries.
    func recycle() {
        for connection in connections where connection.state == .ready && !connection.retiring {
            connection.retiring = true
            if connection.queriesInFlight == 0 { connection.close() }
        }
        ensureConnections()
    }

    // MARK: Queries

    func submit(_ query: PostgresQuery, completion userCompletion: @escaping (Result<PostgresResult, PostgresError>) -> Void) {
        loop.assertInLoop()
        let submitted = loop.now
        let completion: (Result<PostgresResult, PostgresError>) -> Void = { [unowned self] result in
            self.timings.recordQuery(seconds: (self.loop.now - submitted).seconds, result: result)
            userCompletion(result)
        }
        if isShutdown {
            completion(.failure(PostgresError(.shutdown, message: "the database pool is shut down")))
            return
        }
        if waiters.isEmpty, let connection = leastBusy() {
            timings.recordAcquire(seconds: 0)
            connection.send(query, completion: completion)
            if connection.queriesInFlight > 1 { growIfPossible() }
            return
        }
        // Database known to be down (the last attempt failed, nothing is open): fail fast with
        // the reason instead of making every request wait for the acquire timeout.
        if consecutiveFailures > 0 && !hasUsable && opening == 0, let lastFailure {
            completion(.failure(PostgresError(.unavailable, message: lastFailure.message)))
            return
        }
        guard waiters.count < configuration.maxWaiting else {
            completion(.failure(PostgresError(.tooManyWaiting, message: "too many queries waiting for a connection")))
            return
        }
        let waiter = Waiter(query: query, completion: completion, since: submitted)
        let timer = LoopTimer { [unowned self, unowned waiter] in self.expire(waiter) }
        waiter.timer = timer
        loop.schedule(timer, at: loop.now + configuration.acquireTimeout)
        waiters.append(waiter)
        ensureConnections()
    }

    private func leastBusy() -> PostgresConnection? {
        var best: PostgresConnection?
        for connection in connections where connection.state == .ready && !connection.retiring
            && connection.queriesInFlight < configuration.maxPipelineDepth {
            if best == nil || connection.queriesInFlight < best!.queriesInFlight { best = connection }
        }
        return best
    }

    private func growIfPossible() {
        if activeCount < limits.max && opening == 0 && consecutiveFailures == 0 {
            open()
        }
    }

    private func expire(_ waiter: Waiter) {
        guard !waiter.done else { return }
        waiter.done = true
        timeouts += 1
        let reason = lastFailure.map { " (last connection error: \($0.message))" } ?? ""
        waiter.completion(.failure(PostgresError(.acquireTimeout, message: "no database connection within \(configuration.acquireTimeout)\(reason)")))
    }

    private func dispatchWaiters() {
        while let waiter = waiters.first {
            if waiter.done { waiters.removeFirst(); continue }
            guard let connection = leastBusy() else { return }
            waiters.removeFirst()
            waiter.done = true
            if let timer = waiter.timer { loop.cancel(timer) }
            timings.recordAcquire(seconds: (loop.now - waiter.since).seconds)
            connection.send(waiter.query, completion: waiter.completion)
        }
    }

    private func failAllWaiters(_ error: PostgresError) {
        while !waiters.isEmpty {
            let waiter = waiters.removeFirst()
            guard !waiter.done else { continue }
            waiter.done = true
            if let timer = waiter.timer { loop.cancel(timer) }
            waiter.completion(.failure(error))
        }
    }

    // MARK: Opening connections

    /// Keeps at least the minimum open (and one more while queries wait), unless a backoff is running.
    private func ensureConnections() {
        guard !isShutdown, !reconnectTimer.isScheduled else { return }
        connections.removeAll { $0.state == .closed }
        var wanted = limits.min
        if !waiters.isEmpty { wanted = max(wanted, min(limits.max, activeCount + 1)) }
        while activeCount < wanted && (consecutiveFailures == 0 || opening == 0) {
            open()
        }
    }

    private func open() {
        nextID += 1
        // ±10 % jitter on the lifetime so connections opened together are not replaced together.
        let jitter = Double.random(in: 0.9...1.1)
        let lifetime = TimeSpan(nanoseconds: Int64(Double(configuration.maxLifetime.nanoseconds) * jitter))
        let connection = PostgresConnection(id: nextID, loop: loop, delegate: self, lifetime: lifetime)
        connections.append(connection)
        connection.connect(settings)
    }

    func connectionReady(_ connection: PostgresConnection) {
        if consecutiveFailures > 0 {
            logger.info("database connection restored", metadata: ["database": "\(settings.redactedDescription)"])
        }
        consecutiveFailures = 0
        lastFailure = nil
        dispatchWaiters()
        ensureConnections()
    }

    func connectionFailed(_ connection: PostgresConnection, error: PostgresError) {
        connections.removeAll { $0 === connection }
        consecutiveFailures += 1
        lastFailure = error
        if consecutiveFailures == 1 || consecutiveFailures % 10 == 0 {
            logger.error("cannot connect to the database", metadata: [
                "database": "\(settings.redactedDescription)", "error": "\(error.message)", "attempt": "\(consecutiveFailures)",
            ])
        }
        if !hasUsable && opening == 0 {
            // Nothing can serve the waiting queries soon: fail them now rather than at their timeout.
            failAllWaiters(PostgresError(.unavailable, message: error.message))
        }
        scheduleReconnect()
    }

    /// Capped exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff
    /// and Jitter"): many tasks reconnecting after a failover do not arrive in lockstep.
    private func scheduleReconnect() {
        guard !isShutdown, !reconnectTimer.isScheduled else { return }
        let exponent = min(consecutiveFailures - 1, 16)
        let ceiling = min(configuration.reconnectCap.nanoseconds, configuration.reconnectBase.nanoseconds << exponent)
        let delay = TimeSpan(nanoseconds: Int64.random(in: (ceiling / 2)...max(ceiling / 2, ceiling)))
        loop.schedule(reconnectTimer, at: loop.now + delay)
    }

    func connectionClosed(_ connection: PostgresConnection, error: PostgresError?) {
        connections.removeAll { $0 === connection }
        if let error, !isShutdown {
            logger.warning("database connection lost", metadata: ["database": "\(settings.redactedDescription)", "error": "\(error.message)"])
            // A lost connection may mean a failover or restart: the others are suspect too.
            onRecycleNeeded?()
        }
        ensureConnections()
    }

    func connectionHasCapacity(_ connection: PostgresConnection) {
        if connection.retiring && connection.queriesInFlight == 0 {
            connection.close()
            return
        }
        dispatchWaiters()
    }

    func connectionSawReadOnly(_ connection: PostgresConnection) {
        logger.warning("database is read-only (failover?): recycling connections", metadata: ["database": "\(settings.redactedDescription)"])
        onRecycleNeeded?()
    }

    // MARK: Maintenance

    /// Once a second: retire connections past their lifetime, close idle ones above the minimum.
    private func maintain() {
        let now = loop.now
        for connection in connections where connection.state == .ready && !connection.retiring {
            if now >= connection.expiresAt {
                connection.retiring = true
                if connection.queriesInFlight == 0 { connection.close() }
            } else if connection.queriesInFlight == 0 && now - connection.lastActive >= configuration.idleTimeout
                        && activeCount > limits.min {
                connection.close()
            }
        }
        ensureConnections()
        if !isShutdown { loop.schedule(maintenanceTimer, at: now + .seconds(1)) }
    }
}

/// Connection counts of the writer pools, summed over the loops.
public struct PostgresPoolStatistics: Sendable {
    public var idle = 0
    public var busy = 0
    public var opening = 0
    public var waiting = 0
    public var timeouts = 0
    public var timings = PostgresTimings()
}

/// Histograms of query time (submit to result, including any wait) and acquire wait, and errors
/// by SQLSTATE (connection-level failures as `kind`), per loop.
public struct PostgresTimings: Sendable {
    /// Upper bounds in seconds: 0.5 ms to 5 s (the statement timeout).
    public static let buckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

    public struct Histogram: Sendable {
        public var counts = [Int](repeating: 0, count: PostgresTimings.buckets.count + 1)
        public var sum = 0.0
        public var count = 0

        mutating func record(_ seconds: Double) {
            var index = 0
            while index < PostgresTimings.buckets.count && seconds > PostgresTimings.buckets[index] { index += 1 }
            counts[index] += 1
            sum += seconds
            count += 1
        }

        public mutating func merge(_ other: Histogram) {
            for i in counts.indices { counts[i] += other.counts[i] }
            sum += other.sum
            count += other.count
        }
    }

    public var queries = Histogram()
    public var acquire = Histogram()
    /// SQLSTATE (or the failure kind, e.g. `connectionLost`) → count. Bounded: SQLSTATEs are a
    /// fixed set of five-character codes.
    public var errors: [String: Int] = [:]

    mutating func recordQuery(seconds: Double, result: Result<PostgresResult, PostgresError>) {
        queries.record(seconds)
        if case .failure(let error) = result { errors[error.sqlState ?? "\(error.kind)", default: 0] += 1 }
    }

    mutating func recordAcquire(seconds: Double) {
        acquire.record(seconds)
    }

    public mutating func merge(_ other: PostgresTimings) {
        queries.merge(other.queries)
        acquire.merge(other.acquire)
        for (code, count) in other.errors { errors[code, default: 0] += count }
    }
}
