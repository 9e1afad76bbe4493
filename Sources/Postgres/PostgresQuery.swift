/// A SQL statement whose interpolated values become bound parameters, never SQL text:
///
///     let query: PostgresQuery = "SELECT title FROM todos WHERE id = \(id) AND completed = \(done)"
///     // sql: "SELECT title FROM todos WHERE id = $1 AND completed = $2", binds: [id, "true"]
///
/// There is no way to splice a value into the SQL itself, so injection is impossible by
/// construction (postgres-nio's PostgresQuery). Values travel in libpq's text format; the server
/// casts them to the parameter types it inferred when preparing the statement.
public struct PostgresQuery: Sendable, ExpressibleByStringInterpolation, CustomStringConvertible {
    public var sql: String {
        get { key.sql }
        set { key = StatementKey(newValue) }
    }
    /// The SQL with its hash computed once, in one shared object: each connection finds its
    /// prepared statement by it (hashing a write's 400 bytes of SQL on every execution was 2 % of
    /// a `POST`, callgrind), and a copy of the query retains it once. A statement built once and
    /// rebound per request hashes once per process.
    private(set) var key: StatementKey
    /// Parameter values in text format (SQL NULL included), in one buffer.
    public var binds: PostgresBinds
    /// Set by `PostgresDatabase.read`: the statement only reads, so it may share a pipeline sync
    /// (one implicit read-only transaction) with the other reads sent in the same loop iteration.
    public var readOnly = false
    /// For a write: the row it changes (or claims). Writes with the same key go one at a time per
    /// loop (`RowWriteQueues`): a locked row then holds one connection, not all of them.
    public var rowKey: RowKey?
    /// For a single-statement write that does not depend on another's outcome (an insert of a new
    /// row; an update or delete of one row, named by `rowKey`): it may share one implicit
    /// transaction, so one commit, with such writes sent on the same connection in the same loop
    /// iteration (`PostgresConnection`, "commit groups": inserts with inserts, row writes with row
    /// writes, in lock order). Each is still answered only after that commit; if one of them
    /// fails, the others did not commit and are sent again, each alone.
    public var sharesCommit = false

    public init(stringLiteral value: String) {
        key = StatementKey(value)
        binds = []
    }

    public init(stringInterpolation: StringInterpolation) {
        key = StatementKey(stringInterpolation.sql)
        binds = stringInterpolation.binds
    }

    /// The same statement with other values for its parameters, for a statement built once and
    /// bound per call (building the SQL text by interpolation on every request cost four
    /// allocations of a `GET /todos/{id}`'s 27). The values are still only ever bound.
    public func rebinding(_ values: PostgresBinds) -> PostgresQuery {
        precondition(values.count == binds.count, "a statement is rebound with as many values as it has parameters")
        var query = self
        query.binds = values
        return query
    }

    /// `rebinding` with the values appended by `bind`, in parameter order (no array of the
    /// values is made on the way).
    @inlinable
    public func rebinding(_ bind: (inout PostgresBinds) -> Void) -> PostgresQuery {
        // 256: a `PUT`'s sixteen values fit (~140 bytes); growing the buffer was a second allocation.
        var values = PostgresBinds(reservingBytes: 256)
        bind(&values)
        return rebinding(values)
    }

    /// The same write, naming the row it changes (`rowKey`).
    public func changing(row key: String) -> PostgresQuery {
        var query = self
        query.rowKey = RowKey(key)
        return query
    }

    /// The same write, allowed to share its commit with others (`sharesCommit`).
    public func sharingCommit() -> PostgresQuery {
        var query = self
        query.sharesCommit = true
        return query
    }

    /// The statement only: bound values are not shown (they may be personal data).
    public var description: String { sql }

    public struct StringInterpolation: StringInterpolationProtocol {
        var sql = ""
        var binds = PostgresBinds()

        public init(literalCapacity: Int, interpolationCount: Int) {
            sql.reserveCapacity(literalCapacity + interpolationCount * 3)
        }

        public mutating func appendLiteral(_ literal: String) {
            sql += literal
        }

        public mutating func appendInterpolation(_ value: some PostgresBindable) {
            binds.append(value.postgresText)
            sql += "$\(binds.count)"
        }

        public mutating func appendInterpolation(_ value: (some PostgresBindable)?) {
            binds.append(value?.postgresText)
            sql += "$\(binds.count)"
        }

        /// A fixed SQL fragment (a column list shared by statements). `StaticString` only: it can
        /// come from a literal in the source, never from input.
        public mutating func appendInterpolation(sql fragment: StaticString) {
            sql += fragment.description
        }
    }
}

/// A Swift value that can be bound as a parameter, in PostgreSQL's text input format.
public protocol PostgresBindable: Sendable {
    var postgresText: String { get }
}

extension String: PostgresBindable {
    public var postgresText: String { self }
}

extension Substring: PostgresBindable {
    public var postgresText: String { String(self) }
}

extension Int: PostgresBindable {
    public var postgresText: String { String(self) }
}

extension Int64: PostgresBindable {
    public var postgresText: String { String(self) }
}

extension Int32: PostgresBindable {
    public var postgresText: String { String(self) }
}

extension Bool: PostgresBindable {
    public var postgresText: String { self ? "true" : "false" }
}

extension Double: PostgresBindable {
    public var postgresText: String { "\(self)" }
}

/// A statement's SQL and its hash, computed once. Equal when the SQL is equal (a rebound
/// statement shares the object: one pointer check; otherwise the hash, then the text).
struct StatementKey: Hashable, Sendable {
    private final class Text: Sendable {
        let sql: String
        let hash: Int

        init(_ sql: String) {
            self.sql = sql
            hash = sql.hashValue
        }
    }

    private let text: Text
    var sql: String { text.sql }

    init(_ sql: String) { text = Text(sql) }

    static func == (a: StatementKey, b: StatementKey) -> Bool {
        a.text === b.text || a.text.hash == b.text.hash && a.text.sql == b.text.sql
    }

    func hash(into hasher: inout Hasher) { hasher.combine(text.hash) }
}
