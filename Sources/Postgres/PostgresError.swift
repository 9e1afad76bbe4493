/// A database failure, kept with its SQLSTATE (postgres-nio's PSQLError habit) so callers can tell
/// "the client asked for something impossible" from "the database is unavailable".
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The server answered with an error (see `sqlState`).
        case server
        /// The connection broke while the query was in flight; the outcome is unknown.
        case connectionLost
        /// No connection could be made (the database is down or unreachable).
        case unavailable
        /// No connection became free within the acquire timeout.
        case acquireTimeout
        /// Too many queries are already waiting for a connection.
        case tooManyWaiting
        /// The pool was shut down.
        case shutdown
        /// The request's database deadline (`DB_REQUEST_TIMEOUT`) passed first; a statement that
        /// was running is cancelled, and a write's outcome is unknown (as with a lost connection).
        case timedOut
    }

    public let kind: Kind
    /// Five-character SQLSTATE for `.server` errors (e.g. `23505` unique_violation).
    public let sqlState: String?
    /// libpq's or the server's message. Never contains the password: libpq does not echo it.
    public let message: String

    public init(_ kind: Kind, sqlState: String? = nil, message: String) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
    }

    public var description: String {
        if let sqlState { return "\(kind) [\(sqlState)]: \(message)" }
        return "\(kind): \(message)"
    }

    /// True when retrying later may succeed and the client should get 503 + Retry-After:
    /// no connection, lost connection, pool saturated, and the server-side conditions that mean
    /// "not now" (class 08 connection exception, 53 insufficient resources, 57 operator
    /// intervention incl. 57014 statement timeout and 57P01 terminated, 25006 read-only after a
    /// failover, 40001/40P01 serialization failure/deadlock, 26000 a prepared statement lost with
    /// its connection's failed Prepare, once the transparent retry failed too).
    public var isTransient: Bool {
        switch kind {
        case .connectionLost, .unavailable, .acquireTimeout, .tooManyWaiting, .shutdown, .timedOut: return true
        case .server:
            guard let sqlState else { return false }
            return sqlState.hasPrefix("08") || sqlState.hasPrefix("53") || sqlState.hasPrefix("57")
                || sqlState == "25006" || sqlState == "40001" || sqlState == "40P01" || sqlState == "26000"
        }
    }

    /// SQLSTATE 25006 read_only_sql_transaction: what the old writer says after an Aurora failover.
    public var isReadOnlyTransaction: Bool { sqlState == "25006" }

    /// SQLSTATE 0A000 from an execution of a prepared statement: "cached plan must not change
    /// result type". A migration changed the type of a column the statement returns (0005 did,
    /// for the todos' text columns) while this connection kept the statement prepared; PostgreSQL
    /// refuses to run it, before running anything. The connection prepares it again.
    var isStalePreparedStatement: Bool { sqlState == "0A000" }
}
