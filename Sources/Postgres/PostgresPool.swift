import Logging
import Net

/// The connections of one event loop to one database endpoint, and the queries waiting for them.
///
/// Loop-owned: a handler on loop i only ever uses pool i, so no lock is taken per query
/// (thread-per-core; the architecture's recommended per-loop connections). What the loops share
/// (the budget of new connections, the writer's failover state, the failure log) is the
/// endpoint's.
///
/// Where a query goes (docs/ARCHITECTURE.md, "Database deadlines and isolation"):
/// - a write with a row key waits behind a write of the same row in flight on this loop
///   (`RowWriteQueues`);
/// - then to the ready connection with the fewest queries in flight among those the isolation
///   rule lets take work (`PostgresPipeline.acceptsWork`: one that keeps answering, with nothing
///   isolated or abandoned in flight);
/// - when none can, it waits in the pool's queue (bounded) while another connection opens, up to
///   the maximum, until one can, its acquire timeout, or its deadline.
/// Every query ends by its deadline: in a queue its timer fires, in flight its connection's.
final class PostgresPool: PostgresConnectionDelegate {
    let loop: EventLoop
    let endpoint: PostgresEndpoint
    let configuration: PostgresPoolConfiguration
    let limits: (min: Int, max: Int)

    private var connections: [PostgresConnection] = []
    private var waiters = FIFO<PendingQuery>()
    private var rowWrites = RowWriteQueues()
    private var nextID = 0
    private var consecutiveFailures = 0
    private var lastFailure: PostgresError?
    private var isShutdown = false
    private lazy var reconnectTimer = LoopTimer { [unowned self] in self.ensureConnections() }
    private lazy var maintenanceTimer = LoopTimer { [unowned self] in self.maintain() }
    private lazy var probeTimer = LoopTimer { [unowned self] in self.probeWriter() }
    private var probe: WriterProbe?

    init(loop: EventLoop, endpoint: PostgresEndpoint, configuration: PostgresPoolConfiguration, loops: Int) {
        self.loop = loop
        self.endpoint = endpoint
        self.configuration = configuration
        self.limits = configuration.perLoop(loops: loops)
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
    /// Connections this pool started to open, probes included (`db_connections_opened_total`).
    private(set) var opened = 0
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
        stats.waiting = waiters.count + rowWrites.waiting
        stats.timeouts = timeouts
        stats.opened = opened
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
        loop.cancel(probeTimer)
        probe?.connection.close()
        probe = nil
        for connection in connections { connection.close() }
        connections.removeAll()
        let error = PostgresError(.shutdown, message: "the database pool is shutting down")
        failAllWaiters(error)
        for query in rowWrites.removeAll() { query.finish(.failure(error)) }
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

    /// Runs `query`; `completion` runs on this loop with its result, by `deadline` at the latest
    /// (default: `requestTimeout` from now).
    func submit(_ query: consuming PostgresQuery, deadline: MonotonicTime? = nil,
                completion: @escaping (Result<PostgresResult, PostgresError>) -> Void) {
        loop.assertInLoop()
        let now = loop.now
        let pending = PendingQuery(query, submitted: now, deadline: deadline ?? now + configuration.requestTimeout,
                                   pool: self, completion: completion)
        if isShutdown {
            pending.finish(.failure(PostgresError(.shutdown, message: "the database pool is shut down")))
            return
        }
        if let key = pending.query.rowKey, !pending.query.readOnly {
            guard rowWrites.waiting < configuration.maxWaiting else {
                pending.finish(.failure(PostgresError(.tooManyWaiting, message: "too many writes waiting for their rows")))
                return
            }
            pending.holdsRowKey = rowWrites.admit(key, pending)
            guard pending.holdsRowKey else {
                // Behind a write of the same row: it waits here, bounded by its own deadline.
                wait(pending, until: pending.deadline)
                return
            }
        }
        start(pending)
    }

    /// Sends `pending` to a connection that takes work, or queues it until one does.
    private func start(_ pending: PendingQuery) {
        let now = loop.now
        guard pending.deadline > now else {
            pending.finish(.failure(Self.deadlinePassed))
            return
        }
        if waiters.isEmpty, let connection = leastBusy(now: now, joiningCommitGroup: pending.commitGroup) {
            timings.recordAcquire(seconds: (now - pending.submitted).seconds)
            connection.send(pending)
            if connection.queriesInFlight > 1 { growIfPossible() }
            return
        }
        // Nothing can serve it soon: the database is known to be down (the last attempt failed,
        // nothing is open), or the writer is read-only and nothing is open. Fail fast with the
        // reason instead of making every request wait for its timeout.
        if !hasUsable && opening == 0 {
            if consecutiveFailures > 0, let lastFailure {
                pending.finish(.failure(PostgresError(.unavailable, message: lastFailure.message)))
                return
            }
            if !endpoint.opensAllowed {
                pending.finish(.failure(PostgresError(.unavailable, message: "the writer is read-only; waiting for a writable one")))
                return
            }
        }
        guard waiters.count < configuration.maxWaiting else {
            pending.finish(.failure(PostgresError(.tooManyWaiting, message: "too many queries waiting for a connection")))
            return
        }
        wait(pending, until: min(pending.deadline, now + configuration.acquireTimeout))
        waiters.append(pending)
        ensureConnections()
        growIfPossible()
    }

    private static let deadlinePassed = PostgresError(.timedOut, message: "the request deadline passed before a connection was free")

    /// Arms `pending`'s wait timer: at its deadline it times out; at the acquire timeout before that,
    /// it fails as "no connection".
    private func wait(_ pending: PendingQuery, until limit: MonotonicTime) {
        let timer = LoopTimer { [unowned self, unowned pending] in self.expire(pending) }
        pending.waitTimer = timer
        loop.schedule(timer, at: limit)
    }

    private func expire(_ pending: PendingQuery) {
        guard !pending.isFinished else { return }
        pending.waitTimer = nil
        if loop.now >= pending.deadline {
            pending.finish(.failure(Self.deadlinePassed))
            return
        }
        timeouts += 1
        let reason = lastFailure.map { " (last connection error: \($0.message))" } ?? ""
        pending.finish(.failure(PostgresError(.acquireTimeout, message: "no database connection within \(configuration.acquireTimeout)\(reason)")))
    }

    /// Disarms `pending`'s wait timer: it leaves a queue (for a connection, or for its row).
    private func stopWaiting(_ pending: PendingQuery) {
        if let timer = pending.waitTimer { loop.cancel(timer) }
        pending.waitTimer = nil
    }

    /// Every query ends here (by its result, its deadline, or a failure) before its caller hears.
    func finished(_ pending: PendingQuery, _ result: Result<PostgresResult, PostgresError>) {
        stopWaiting(pending)
        timings.recordQuery(seconds: (loop.now - pending.submitted).seconds, result: result)
        if case .failure(let error) = result {
            endpoint.faults.report(error, host: endpoint.host, now: loop.now)
        }
        if pending.holdsRowKey, let key = pending.query.rowKey {
            pending.holdsRowKey = false
            if let next = rowWrites.finished(key) {
                stopWaiting(next)
                next.holdsRowKey = true
                start(next)
            }
        }
        pending.completion(result)
    }

    /// The least busy connection the isolation rule lets take work now. `joiningCommitGroup`: for
    /// a write that may share its commit, a connection whose commit group of that kind (this
    /// iteration's) is open and below the bound comes first, so one commit serves them all
    /// (`PostgresConnection`, "commit groups"); spread over the least busy connections, each had a
    /// commit of its own.
    private func leastBusy(now: MonotonicTime, joiningCommitGroup: PendingQuery.CommitGroup? = nil) -> PostgresConnection? {
        var best: PostgresConnection?
        for connection in connections where connection.acceptsWork(now: now) {
            if let kind = joiningCommitGroup,
               (1..<PostgresConnection.maxCommitGroup).contains(kind == .inserts ? connection.openCommitGroup : connection.openRowGroup) {
                return connection
            }
            if best == nil || connection.queriesInFlight < best!.queriesInFlight { best = connection }
        }
        return best
    }

    private func growIfPossible() {
        if activeCount < limits.max && opening == 0 && consecutiveFailures == 0 {
            open()
        }
    }

    private func dispatchWaiters() {
        let now = loop.now
        while let waiter = waiters.first {
            if waiter.isFinished { waiters.removeFirst(); continue }
            guard let connection = leastBusy(now: now) else { return }
            waiters.removeFirst()
            stopWaiting(waiter)
            timings.recordAcquire(seconds: (now - waiter.submitted).seconds)
            connection.send(waiter)
        }
    }

    private func failAllWaiters(_ error: PostgresError) {
        while !waiters.isEmpty {
            let waiter = waiters.removeFirst()
            waiter.finish(.failure(error))  // no-op for one that already timed out
        }
    }

    // MARK: Opening connections

    /// Keeps at least the minimum open (and one more while queries wait), unless a backoff is
    /// running, the writer is read-only, or the process's connection budget is spent.
    private func ensureConnections() {
        guard !isShutdown, !reconnectTimer.isScheduled else { return }
        connections.removeAll { $0.state == .closed }
        var wanted = limits.min
        if !waiters.isEmpty { wanted = max(wanted, min(limits.max, activeCount + 1)) }
        while activeCount < wanted && (consecutiveFailures == 0 || opening == 0) {
            guard open() else { return }
        }
    }

    /// Opens a connection if the writer is not read-only and the budget has a token; else false
    /// (a budget wait schedules the next attempt).
    @discardableResult
    private func open() -> Bool {
        guard !isShutdown, endpoint.opensAllowed else { return false }
        if let wait = endpoint.takeConnectionToken(now: loop.now) {
            if !reconnectTimer.isScheduled { loop.schedule(reconnectTimer, at: loop.now + wait) }
            return false
        }
        let settings: PostgresConnectionSettings
        switch endpoint.settingsForNewConnection() {
        case .success(let prepared): settings = prepared
        case .failure(let error):
            // No usable credentials yet (say, AWS credentials not fetched): a failed attempt.
            recordConnectFailure(error)
            return false
        }
        nextID += 1
        // ±10 % jitter on the lifetime so connections opened together are not replaced together.
        let jitter = Double.random(in: 0.9...1.1)
        let lifetime = TimeSpan(nanoseconds: Int64(Double(configuration.maxLifetime.nanoseconds) * jitter))
        let connection = PostgresConnection(id: nextID, loop: loop, delegate: self, lifetime: lifetime, rules: configuration.pipelineRules,
                                            canceller: endpoint.canceller)
        connections.append(connection)
        opened += 1
        connection.connect(settings)
        return true
    }

    /// New credentials arrived: a pool backing off after failures tries again at once.
    func retryNow() {
        guard !isShutdown, consecutiveFailures > 0, reconnectTimer.isScheduled else { return }
        loop.cancel(reconnectTimer)
        ensureConnections()
    }

    func connectionReady(_ connection: PostgresConnection) {
        if consecutiveFailures > 0 {
            endpoint.faults.report(.connectionRestored, message: "after \(consecutiveFailures) failed attempt(s)", host: endpoint.host, now: loop.now)
        }
        consecutiveFailures = 0
        lastFailure = nil
        dispatchWaiters()
        ensureConnections()
    }

    func connectionFailed(_ connection: PostgresConnection, error: PostgresError) {
        connections.removeAll { $0 === connection }
        if error.isAuthenticationFailure { endpoint.credentials?.rejected(sqlState: error.sqlState ?? "28P01") }
        recordConnectFailure(error)
    }

    private func recordConnectFailure(_ error: PostgresError) {
        consecutiveFailures += 1
        lastFailure = error
        endpoint.faults.report(.connectFailed, sqlState: error.sqlState, message: error.message, host: endpoint.host, now: loop.now)
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
            endpoint.faults.report(.connectionLost, sqlState: error.sqlState, message: error.message, host: endpoint.host, now: loop.now)
            // A lost connection may mean a failover or restart: the others are suspect too (once
            // per event, WriterFailover decides).
            endpoint.connectionLost(now: loop.now)
        }
        ensureConnections()
        dispatchWaiters()
    }

    func connectionHasCapacity(_ connection: PostgresConnection) {
        if connection.retiring && connection.queriesInFlight == 0 {
            connection.close()
            return
        }
        dispatchWaiters()
    }

    func connectionSawReadOnly(_ connection: PostgresConnection, error: PostgresError) {
        endpoint.sawReadOnly(error, now: loop.now)
    }

    func connection(_ connection: PostgresConnection, reports event: PostgresFaultLog.Event, message: String) {
        endpoint.faults.report(event, message: message, host: endpoint.host, now: loop.now)
    }

    func connection(_ connection: PostgresConnection, resubmits query: PendingQuery) {
        start(query)
    }

    // MARK: The writer probe (failover)

    /// Called through the endpoint on the first loop: one probe connection at `deadline`.
    func scheduleProbe(at deadline: MonotonicTime) {
        guard !isShutdown else { return }
        loop.schedule(probeTimer, at: deadline)
    }

    /// Opens one connection that only a writable server accepts (libpq checks
    /// `transaction_read_only` after connecting), and reports what it found.
    private func probeWriter() {
        guard !isShutdown, probe == nil else { return }
        guard case .success(var settings) = endpoint.settingsForNewConnection() else {
            // No credentials to probe with: try again at the failover's next probe time.
            endpoint.probeFinished(writable: false, error: nil, now: loop.now)
            return
        }
        settings["target_session_attrs"] = "read-write"
        let probe = WriterProbe(pool: self)
        let connection = PostgresConnection(id: 0, loop: loop, delegate: probe, lifetime: .seconds(60), canceller: endpoint.canceller)
        probe.connection = connection
        self.probe = probe
        opened += 1
        connection.connect(settings)
    }

    fileprivate func probeEnded(writable: Bool, error: PostgresError?) {
        probe = nil
        endpoint.probeFinished(writable: writable, error: error, now: loop.now)
    }

    // MARK: Maintenance

    /// Once a second: retire connections past their lifetime, close idle ones above the minimum,
    /// write the failure log's summaries.
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
        endpoint.faults.tick(now: now)
        if !isShutdown { loop.schedule(maintenanceTimer, at: now + .seconds(1)) }
    }
}

/// The delegate of a writer probe's connection: writable if it connects at all (libpq refused a
/// read-only server), then closed.
private final class WriterProbe: PostgresConnectionDelegate {
    unowned let pool: PostgresPool
    var connection: PostgresConnection!

    init(pool: PostgresPool) { self.pool = pool }

    func connectionReady(_ connection: PostgresConnection) {
        connection.close()
        pool.probeEnded(writable: true, error: nil)
    }

    func connectionFailed(_ connection: PostgresConnection, error: PostgresError) {
        pool.probeEnded(writable: false, error: error)
    }

    func connectionClosed(_ connection: PostgresConnection, error: PostgresError?) {}
    func connectionHasCapacity(_ connection: PostgresConnection) {}
    func connectionSawReadOnly(_ connection: PostgresConnection, error: PostgresError) {}
    func connection(_ connection: PostgresConnection, reports event: PostgresFaultLog.Event, message: String) {}
    func connection(_ connection: PostgresConnection, resubmits query: PendingQuery) {}
}

/// Connection counts of the writer pools, summed over the loops.
public struct PostgresPoolStatistics: Sendable {
    public var idle = 0
    public var busy = 0
    public var opening = 0
    public var waiting = 0
    public var timeouts = 0
    /// Connections opened since start (probes included).
    public var opened = 0
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
