import Logging
import Net
import Synchronization

/// The database's failure log (component `database`): one line per cause, with its SQLSTATE when
/// PostgreSQL gave one, the server's or libpq's message, the host, and how many requests (or
/// connection attempts) it affected; then a summary every 10 s while it lasts. Shared by every
/// loop's pools of one process; the lock is taken only when something failed and once a second.
/// Fields: docs/LOGGING.md, "Database failures".
public final class PostgresFaultLog: Sendable {
    /// The causes, named as they appear in the `event` field.
    enum Event: String {
        /// A request's database deadline (`DB_REQUEST_TIMEOUT`) passed: answered 503.
        case requestTimeout = "request_timeout"
        /// PostgreSQL's `statement_timeout` (SQLSTATE 57014) ended a statement.
        case statementTimeout = "statement_timeout"
        /// A cancel request was sent for a statement past its deadline.
        case cancelSent = "cancel_sent"
        /// A row write waited (on a row lock) with statements queued behind it: cancelled and sent
        /// again alone, so that they run.
        case rowWriteIsolated = "row_write_isolated"
        /// No usable connection within `DB_ACQUIRE_TIMEOUT`.
        case acquireTimeout = "acquire_timeout"
        /// The pool's wait queue was full.
        case poolSaturated = "pool_saturated"
        /// Requests failed at once: no connection can be made now, or the writer is read-only.
        case unavailable = "database_unavailable"
        /// A connection broke with statements in flight (their outcome is unknown).
        case connectionLost = "connection_lost"
        /// A connection attempt failed.
        case connectFailed = "connect_failed"
        /// A connection that stopped answering (deadline passed, no progress) was closed.
        case connectionGivenUp = "connection_given_up"
        /// A connection could be made again after failures.
        case connectionRestored = "connection_restored"
        /// The writer answered SQLSTATE 25006 (read-only): a failover is under way.
        case readOnly = "writer_read_only"
        /// A probe found no writable writer yet.
        case probeFailed = "writer_probe_failed"
        /// A writable writer is back; the writer connections are replaced once.
        case writerRecovered = "writer_recovered"
        /// Every loop replaces its connections to this endpoint (a lost connection).
        case connectionsReplaced = "connections_replaced"
        /// A statement's Prepare was lost (SQLSTATE 26000 after the transparent retry).
        case statementMissing = "prepared_statement_missing"
        /// Another server error that means "not now" (classes 08, 53, 57, 40001, 40P01).
        case serverUnavailable = "server_unavailable"
        /// A server error the API answers 500.
        case serverError = "server_error"

        var level: Logger.Level {
            switch self {
            case .connectionLost, .connectFailed, .readOnly, .serverError, .serverUnavailable, .statementMissing: .error
            case .connectionRestored, .writerRecovered: .info
            default: .warning
            }
        }

        var message: String {
            switch self {
            case .requestTimeout: "database work passed the request deadline; answered 503"
            case .statementTimeout: "statement timeout"
            case .cancelSent: "cancel request sent for a statement past its deadline"
            case .rowWriteIsolated: "a row write waiting on a lock held statements behind it; cancelled and sent again alone"
            case .acquireTimeout: "no database connection within the acquire timeout"
            case .poolSaturated: "too many queries waiting for a database connection"
            case .unavailable: "database unavailable; requests answered 503 at once"
            case .connectionLost: "database connection lost"
            case .connectFailed: "cannot connect to the database"
            case .connectionGivenUp: "database connection stopped answering; replaced"
            case .connectionRestored: "database connection restored"
            case .readOnly: "the writer is read-only (failover?): writes answered 503 until a writable writer is found"
            case .probeFailed: "no writable writer yet"
            case .writerRecovered: "a writable writer is back; replacing the writer connections"
            case .connectionsReplaced: "replacing this endpoint's connections"
            case .statementMissing: "prepared statement missing after a retry"
            case .serverUnavailable: "the database refused the statement for now"
            case .serverError: "unexpected database error"
            }
        }

        /// The cause of a failed query, or nil when it is not a database fault (the client's data
        /// was refused, or the service is shutting down).
        init?(_ error: PostgresError) {
            switch error.kind {
            case .timedOut: self = .requestTimeout
            case .acquireTimeout: self = .acquireTimeout
            case .tooManyWaiting: self = .poolSaturated
            case .unavailable: self = .unavailable
            case .connectionLost: self = .connectionLost
            case .shutdown: return nil
            case .server:
                let state = error.sqlState ?? ""
                if state == "57014" { self = .statementTimeout }
                else if state == "25006" { self = .readOnly }
                else if state == "26000" { self = .statementMissing }
                else if state.hasPrefix("22") || state.hasPrefix("23") { return nil }
                else if error.isTransient { self = .serverUnavailable }
                else { self = .serverError }
            }
        }
    }

    private let throttle: Mutex<FaultLogThrottle>
    private let logger: Logger
    private let window: String

    init(logger: Logger, interval: TimeSpan = .seconds(10)) {
        self.logger = logger
        window = interval.description
        throttle = Mutex(FaultLogThrottle(interval: interval))
    }

    func report(_ event: Event, sqlState: String? = nil, message: String, host: String, count: Int = 1, now: MonotonicTime) {
        let cause = FaultLogThrottle.Cause(event: event.rawValue, sqlState: sqlState)
        if let line = throttle.withLock({ $0.report(cause, message: message, host: host, affected: count, now: now) }) {
            write(line, level: event.level, text: event.message)
        }
    }

    func report(_ error: PostgresError, host: String, now: MonotonicTime) {
        guard let event = Event(error) else { return }
        report(event, sqlState: error.sqlState, message: error.message, host: host, now: now)
    }

    /// Writes the summaries that are due (called once a second by each loop's pools).
    func tick(now: MonotonicTime) {
        let lines = throttle.withLock { $0.due(now: now) }
        for line in lines {
            let event = Event(rawValue: line.cause.event)
            write(line, level: event?.level ?? .warning, text: "still: " + (event?.message ?? line.cause.event))
        }
    }

    private func write(_ line: FaultLogThrottle.Line, level: Logger.Level, text: String) {
        var metadata: Logger.Metadata = [
            "event": .string(line.cause.event),
            "error": .string(line.message),
            "host": .string(line.host),
            "count": .stringConvertible(line.affected),
        ]
        if let sqlState = line.cause.sqlState { metadata["sqlstate"] = .string(sqlState) }
        if line.isSummary { metadata["window"] = .string(window) }
        logger.log(level: level, "\(text)", metadata: metadata)
    }
}
