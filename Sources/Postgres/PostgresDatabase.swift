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
    private let loops: [EventLoop]

    public init(loops: [EventLoop], writer: PostgresConnectionSettings, reader: PostgresConnectionSettings?,
                configuration: PostgresPoolConfiguration, logger: Logger) {
        self.loops = loops
        func makePools(_ settings: PostgresConnectionSettings) -> [LoopBound<PostgresPool>] {
            loops.map { LoopBound(PostgresPool(loop: $0, settings: settings, configuration: configuration, loops: loops.count, logger: logger)) }
        }
        writers = makePools(writer)
        readers = reader.map(makePools)
        let writerPools = writers
        for pool in writers {
            // A read-only writer or a lost writer connection: every loop replaces its writer connections.
            pool.value.onRecycleNeeded = {
                for other in writerPools { other.value.loop.execute { other.value.recycle() } }
            }
        }
        if let readerPools = readers {
            for pool in readerPools {
                pool.value.onRecycleNeeded = {
                    for other in readerPools { other.value.loop.execute { other.value.recycle() } }
                }
            }
        }
    }

    /// Opens the minimum connections on every loop (asynchronously; callable from any thread).
    public func start() {
        for pool in writers + (readers ?? []) {
            pool.value.loop.execute { pool.value.start() }
        }
    }

    /// Closes every connection; queries still waiting fail with `.shutdown`.
    public func shutdown() {
        for pool in writers + (readers ?? []) {
            pool.value.loop.execute { pool.value.shutdown() }
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
    public func read(_ query: PostgresQuery, completion: @escaping (Result<PostgresResult, PostgresError>) -> Void) {
        var query = query
        query.readOnly = true
        guard let readers else { return pool(writers).submit(query, completion: completion) }
        pool(readers).submit(query) { [self] result in
            // The reader could not run it at all (no connection): the writer can.
            if case .failure(let error) = result, error.kind != .server {
                pool(writers).submit(query, completion: completion)
            } else {
                completion(result)
            }
        }
    }

    /// `query` for callers on the loop without a task: `completion` runs on this loop.
    public func query(_ query: PostgresQuery, completion: @escaping (Result<PostgresResult, PostgresError>) -> Void) {
        pool(writers).submit(query, completion: completion)
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
                pool.value.loop.execute { continuation.resume(returning: pool.value.statistics) }
            }
            total.idle += stats.idle
            total.busy += stats.busy
            total.opening += stats.opening
            total.waiting += stats.waiting
            total.timeouts += stats.timeouts
            total.timings.merge(stats.timings)
        }
        return total
    }

    /// Readiness: can the writer answer `SELECT 1` within `timeout`? Nil when it can, else the
    /// reason. Whichever comes first, the answer or the timer, decides; the other is ignored (a
    /// query cannot be taken back, but nobody waits for it).
    public func ping(timeout: TimeSpan) async -> String? {
        guard let loop = EventLoop.current else { return "not on an event loop" }
        final class Race { var decided = false }
        let race = LoopBound(Race())
        return await withCheckedContinuation { (continuation: CheckedContinuation<String?, Never>) in
            let timer = LoopTimer {
                guard !race.value.decided else { return }
                race.value.decided = true
                continuation.resume(returning: "database: no answer within \(timeout)")
            }
            loop.schedule(timer, at: loop.now + timeout)
            let timerBox = LoopBound(timer)
            Task(executorPreference: loop) {
                var reason: String?
                do {
                    _ = try await self.query("SELECT 1")
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
