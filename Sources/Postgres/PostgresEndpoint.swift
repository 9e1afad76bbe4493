import Logging
import Net
import Synchronization

/// What every loop's pool for one endpoint (the writer, or the reader) shares: the budget of new
/// connections per process, the writer's failover state, and the failure log. Taken under a lock
/// only when a connection opens or something fails, never per query.
final class PostgresEndpoint: Sendable {
    let settings: PostgresConnectionSettings
    /// The writer: it can turn read-only in a failover (a reader is read-only by nature).
    let isWriter: Bool
    /// For log lines: the host (and port) only.
    let host: String
    let faults: PostgresFaultLog
    let canceller: PostgresCanceller
    /// Credentials that change while the service runs (a rotated secret, IAM tokens); nil: the
    /// settings' own.
    let credentials: PostgresCredentialSource?

    private struct Shared {
        var budget: ConnectionBudget
        var failover = WriterFailover()
        var pools: [LoopBound<PostgresPool>] = []
    }

    private let shared: Mutex<Shared>

    init(settings: PostgresConnectionSettings, isWriter: Bool, configuration: PostgresPoolConfiguration, faults: PostgresFaultLog,
         credentials: PostgresCredentialSource? = nil) {
        self.settings = settings
        self.credentials = credentials
        self.isWriter = isWriter
        self.faults = faults
        host = settings.hostDescription
        canceller = PostgresCanceller(maxInFlight: configuration.maxConnections)
        shared = Mutex(Shared(budget: ConnectionBudget(capacity: configuration.maxConnections,
                                                       refillPeriod: configuration.connectionRefillPeriod, now: .now())))
    }

    /// Set once, before the pools start.
    func attach(_ pools: [LoopBound<PostgresPool>]) {
        shared.withLock { $0.pools = pools }
    }

    /// The settings for a connection opening now, with the current credentials.
    func settingsForNewConnection() -> Result<PostgresConnectionSettings, PostgresError> {
        guard let credentials else { return .success(settings) }
        var settings = settings
        if let error = credentials.prepare(&settings) { return .failure(error) }
        return .success(settings)
    }

    /// New credentials are in: every pool that is backing off after failures tries again now.
    func credentialsChanged() {
        let pools = shared.withLock { $0.pools }
        for pool in pools { pool.loop.execute { pool.value.retryNow() } }
    }

    // MARK: Budget and state

    /// Takes a token for a new connection: nil when granted, else how long to wait for one.
    func takeConnectionToken(now: MonotonicTime) -> TimeSpan? {
        shared.withLock { $0.budget.take(now: now) }
    }

    /// False while the writer is read-only: the pools open nothing, only the probe connects.
    var opensAllowed: Bool { shared.withLock { $0.failover.opensAllowed } }

    /// True while the writer is read-only (readiness answers 503).
    var isReadOnly: Bool { !opensAllowed }

    // MARK: Events

    func sawReadOnly(_ error: PostgresError, now: MonotonicTime) {
        guard isWriter else { return }
        perform(shared.withLock { $0.failover.sawReadOnly(now: now) }, error: error)
    }

    func connectionLost(now: MonotonicTime) {
        perform(shared.withLock { $0.failover.connectionLost(now: now) }, error: nil)
    }

    func probeFinished(writable: Bool, error: PostgresError?, now: MonotonicTime) {
        if !writable, let error {
            faults.report(.probeFailed, sqlState: error.sqlState, message: error.message, host: host, now: now)
        }
        perform(shared.withLock { $0.failover.probeFinished(writable: writable, now: now) }, error: nil)
    }

    func writableSeen(now: MonotonicTime) {
        perform(shared.withLock { $0.failover.writableSeen(now: now) }, error: nil)
    }

    private func perform(_ actions: [WriterFailover.Action], error: PostgresError?) {
        guard !actions.isEmpty else { return }
        let pools = shared.withLock { $0.pools }
        let now = MonotonicTime.now()
        for action in actions {
            switch action {
            case .enteredReadOnly:
                faults.report(.readOnly, sqlState: error?.sqlState ?? "25006", message: error?.message ?? "read-only", host: host, now: now)
            case .probe(let at):
                guard let first = pools.first else { continue }
                first.loop.execute { first.value.scheduleProbe(at: at) }
            case .recycle:
                faults.report(.connectionsReplaced, message: "replacing the connections of \(pools.count) loop\(pools.count == 1 ? "" : "s")",
                              host: host, now: now)
                for pool in pools { pool.loop.execute { pool.value.recycle() } }
            case .recovered(let after):
                faults.report(.writerRecovered, message: "read-only for \(after)", host: host, now: now)
            }
        }
    }
}
