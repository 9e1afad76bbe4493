import Logging
import Net

/// The service's database: per-loop pools for the writer endpoint and, optionally, the reader.
///
/// `query` and `read` must be called on one of the loops: from a task running there
/// (`Task(executorPreference: loop)`, as the HTTP server runs async handlers), or with a
/// completion from code running there. They use that loop's pool and resume on that loop.
public final class PostgresDatabase: Sendable {
    private let writers: [LoopBound<PostgresPool>]
    private let readers: [LoopBound<PostgresPool>]?
    private let writer: PostgresEndpoint
    private let reader: PostgresEndpoint?
    private let loops: [EventLoop]
    private let requestTimeout: TimeSpan

    /// The deadline of the current request's database work, for handlers running in a task:
    /// `withRequestDeadline` sets it; queries outside it get `requestTimeout` from when they start.
    @TaskLocal static var requestDeadline: MonotonicTime?

    public init(loops: [EventLoop], writer: PostgresConnectionSettings, reader: PostgresConnectionSettings?,
                configuration: PostgresPoolConfiguration, logger: Logger, credentials: PostgresCredentialSource? = nil) {
        self.loops = loops
        requestTimeout = configuration.requestTimeout
        let faults = PostgresFaultLog(logger: logger)
        func makePools(_ endpoint: PostgresEndpoint) -> [LoopBound<PostgresPool>] {
            let pools = loops.map { LoopBound(PostgresPool(loop: $0, endpoint: endpoint, configuration: configuration, loops: loops.count), loop: $0) }
            endpoint.attach(pools)
            return pools
        }
        self.writer = PostgresEndpoint(settings: writer, isWriter: true, configuration: configuration, faults: faults, credentials: credentials)
        writers = makePools(self.writer)
        let readerEndpoint = reader.map { PostgresEndpoint(settings: $0, isWriter: false, configuration: configuration, faults: faults, credentials: credentials) }
        self.reader = readerEndpoint
        readers = readerEndpoint.map(makePools)
    }

    /// Runs `body` with one deadline for all its queries: `DB_REQUEST_TIMEOUT` from now.
    public func withRequestDeadline<T>(_ body: () async throws -> T) async rethrows -> T {
        try await Self.$requestDeadline.withValue(MonotonicTime.now() + requestTimeout, operation: body)
    }

    /// True while the writer answers read-only (a failover under way) and no probe has found a
    /// writable one yet.
    public var writerIsReadOnly: Bool { writer.isReadOnly }

    /// The credential source has new credentials: pools backing off after refused connections try
    /// again now instead of at their next backoff step (callable from any thread).
    public func credentialsChanged() {
        writer.credentialsChanged()
        reader?.credentialsChanged()
    }

    /// Opens the minimum connections on every loop (asynchronously; callable from any thread).
    public func start() {
        for pool in writers + (readers ?? []) {
            pool.loop.execute { pool.value.start() }
        }
    }

    /// Closes every connection; queries still waiting fail with `.shutdown`.
    public func shutdown() {
        for pool in writers + (readers ?? []) {
            pool.loop.execute { pool.value.shutdown() }
        }
    }

    /// Runs `query` on the writer.
    public func query(_ query: PostgresQuery) async throws(PostgresError) -> PostgresResult {
        try await Self.awaiting { self.query(query, completion: $0) }
    }

    /// Runs a read-only `query` on the reader endpoint when one is configured, falling back to the
    /// writer when the reader cannot serve (down, unreachable, saturated).
    public func read(_ query: PostgresQuery) async throws(PostgresError) -> PostgresResult {
        try await Self.awaiting { self.read(query, completion: $0) }
    }

    /// `read` for callers that run on the loop without a task: `completion` runs on this loop.
    /// (A one-query HTTP handler answers from here; a task per request cost more than the query's
    /// own client-side work.)
    /// `consuming` (as `query` and the pool's `submit`): the query moves into its pending record
    /// instead of being copied at each step (each copy retained its SQL, values and row key).
    public func read(_ query: consuming PostgresQuery, completion: @escaping (Result<PostgresResult, PostgresError>) -> Void) {
        var query = query
        query.readOnly = true
        let deadline = Self.requestDeadline
        guard let readers else { return pool(writers).submit(query, deadline: deadline, completion: completion) }
        let readerPool = pool(readers)
        let started = readerPool.loop.now
        let retry = copy query  // for the writer, should the reader fail
        readerPool.submit(query, deadline: deadline) { [self] result in
            // The reader could not run it at all (no connection): the writer can, within what is
            // left of the same deadline.
            if case .failure(let error) = result, error.kind != .server, error.kind != .timedOut {
                pool(writers).submit(retry, deadline: deadline ?? started + requestTimeout, completion: completion)
            } else {
                completion(result)
            }
        }
    }

    /// `query` for callers on the loop without a task: `completion` runs on this loop. `deadline`:
    /// one deadline shared by the statements of a callback handler (`requestDeadlineFromNow`);
    /// nil takes the task's (`withRequestDeadline`), else `DB_REQUEST_TIMEOUT` from now.
    public func query(_ query: consuming PostgresQuery, deadline: MonotonicTime? = nil,
                      completion: @escaping (Result<PostgresResult, PostgresError>) -> Void) {
        pool(writers).submit(query, deadline: deadline ?? Self.requestDeadline, completion: completion)
    }

    /// What `withRequestDeadline` gives a task, for a callback handler that may run several statements.
    public func requestDeadlineFromNow() -> MonotonicTime {
        MonotonicTime.now() + requestTimeout
    }

    private func pool(_ pools: [LoopBound<PostgresPool>]) -> PostgresPool {
        guard let loop = EventLoop.current else {
            preconditionFailure("PostgresDatabase is called on an event loop")
        }
        let pool = pools[loop.index].value
        assert(pool.loop === loop)
        return pool
    }

    /// The async form of a completion-based call: `start` runs at once, on the task's loop.
    private static func awaiting(_ start: (@escaping (Result<PostgresResult, PostgresError>) -> Void) -> Void) async throws(PostgresError) -> PostgresResult {
        let outcome = await withUnsafeContinuation { (continuation: UnsafeContinuation<Result<PostgresResult, PostgresError>, Never>) in
            start { continuation.resume(returning: $0) }
        }
        return try outcome.get()
    }

    /// Writer pool statistics from every loop, added up (for `/metrics`).
    public func statistics() async -> PostgresPoolStatistics {
        var total = PostgresPoolStatistics()
        for pool in writers {
            let stats = await withCheckedContinuation { (continuation: CheckedContinuation<PostgresPoolStatistics, Never>) in
                pool.loop.execute { continuation.resume(returning: pool.value.statistics) }
            }
            total.idle += stats.idle
            total.busy += stats.busy
            total.opening += stats.opening
            total.waiting += stats.waiting
            total.timeouts += stats.timeouts
            total.opened += stats.opened
            total.timings.merge(stats.timings)
        }
        return total
    }

    /// Readiness: can the writer take writes, answering within `timeout`? Nil when it can, else
    /// the reason: no answer, an error, or a read-only writer (`pg_is_in_recovery()` or
    /// `transaction_read_only`: what a demoted Aurora writer says). Whichever comes first, the
    /// answer or the timer, decides; the other is ignored (a query cannot be taken back, but nobody
    /// waits for it).
    public func ping(timeout: TimeSpan) async -> String? {
        guard let loop = EventLoop.current else { return "not on an event loop" }
        final class Race { var decided = false }
        let race = LoopBound(Race(), loop: loop)
        return await withCheckedContinuation { (continuation: CheckedContinuation<String?, Never>) in
            let timer = LoopTimer {
                guard !race.value.decided else { return }
                race.value.decided = true
                continuation.resume(returning: "database: no answer within \(timeout)")
            }
            loop.schedule(timer, at: loop.now + timeout)
            let timerBox = LoopBound(timer, loop: loop)
            Task(executorPreference: loop) {
                var reason: String?
                do {
                    let answer = try await self.query("SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'")
                    if answer.bool(0, 0) == true {
                        reason = "database: the writer is read-only"
                    } else if self.writer.isReadOnly {
                        // Writable again (seen here first): let the failover probe confirm it now.
                        self.writer.writableSeen(now: loop.now)
                        reason = "database: the writer was read-only; checking again"
                    }
                } catch {
                    reason = "database: \((error as? PostgresError)?.kind ?? .unavailable)"
                }
                guard !race.value.decided else { return }
                race.value.decided = true
                loop.cancel(timerBox.value)
                continuation.resume(returning: reason)
            }
        }
    }
}
