import Net
import Postgres

/// The SQL of the todos. Every value is a bound parameter (`PostgresQuery` interpolation); every
/// write is a single statement, committed before its result arrives, so a 2xx is sent only after
/// PostgreSQL has committed the write. Writes name the row they change (`changing(row:)`), so
/// that writes to one row wait for each other in the process, not on a connection each.
///
/// Owners (`AUTH` on): every statement takes the caller's `owner` and touches only that owner's
/// rows; another owner's todo is indistinguishable from a missing one. With `AUTH=off` the owner
/// is nil and the filter is `(true OR owner = NULL)`, which the planner folds away, so the
/// statements and their plans are today's. `ownerFilter` picks the text; the owner is always a
/// bound parameter.
struct TodoRepository: Sendable {
    let database: PostgresDatabase

    /// `'epoch' + n ms`: exact, where `to_timestamp(double)` would round.
    private static func millisecondsSQL(_ value: Int64??) -> String? { (value ?? nil).map(String.init) }

    /// `(owner = $n)` for a caller, `(true OR owner = $n)` (always true) without one.
    static func ownerFilter(_ owner: String?) -> StaticString { owner == nil ? "true OR " : "" }

    func find(id: String, owner: String?) async throws(PostgresError) -> Todo? {
        try Self.todo(await database.read(Self.findQuery(id, owner: owner)))
    }

    /// `find` for a callback handler on the loop; `completion` runs on the loop, with the row to
    /// render (no `Todo` made).
    func find(id: String, owner: String?, completion: @escaping (Result<TodoRow?, PostgresError>) -> Void) {
        database.read(Self.findQuery(id, owner: owner)) { completion($0.map { TodoRow($0, row: 0) }) }
    }

    private static let findStatement: PostgresQuery = "SELECT \(sql: Todo.columns) FROM todos WHERE id = \("")"
    private static let findOwnedStatement: PostgresQuery = "SELECT \(sql: Todo.columns) FROM todos WHERE id = \("") AND owner = \("")"

    private static func findQuery(_ id: String, owner: String?) -> PostgresQuery {
        guard let owner else { return findStatement.rebinding { $0.append(id) } }
        return findOwnedStatement.rebinding { $0.append(id); $0.append(owner) }
    }

    private static func todo(_ result: PostgresResult) -> Todo? { result.rowCount == 0 ? nil : Todo(result, row: 0) }

    /// The current version of a todo (nil: none visible to `owner`), on the writer: it follows a
    /// write that matched no row, and must see what that write saw.
    func version(id: String, owner: String?, deadline: MonotonicTime,
                 completion: @escaping (Result<Int?, PostgresError>) -> Void) {
        database.query("SELECT version FROM todos WHERE id = \(id) AND (\(sql: Self.ownerFilter(owner))owner = \(owner))",
                       deadline: deadline) { result in
            completion(result.map { $0.rowCount == 0 ? nil : $0.int(0, 0) })
        }
    }

    /// Up to `limit` rows of `result`, rendered straight from it (`TodoRow`).
    struct Page {
        let result: PostgresResult
        let limit: Int

        var hasMore: Bool { result.rowCount > limit }

        /// The well-formed rows among the first `limit` (a malformed one is skipped).
        func forEachRow(_ body: (TodoRow) -> Void) {
            for row in 0..<min(result.rowCount, limit) {
                if let todo = TodoRow(result, row: row) { body(todo) }
            }
        }
    }

    /// Newest first; keyset pagination on (created_at, id), so inserts meanwhile shift nothing.
    /// A callback, like `find`: one read, answered on the loop without a task.
    func list(limit: Int, after cursor: TodoCursor?, completed: Bool?, titleContains query: String?, owner: String?,
              completion: @escaping (Result<Page, PostgresError>) -> Void) {
        let pattern = query.map { "%" + Self.escapeLike($0) + "%" }
        // Parameters in statement order: the cursor (the `After` forms), then the filters and the
        // owner (the filtered forms) or the owner alone (the plain owned forms), then the limit.
        var values = PostgresBinds(reservingBytes: 128)
        if let cursor {
            values.append(cursor.createdAtMicros)
            values.append(cursor.id)
        }
        let statement: PostgresQuery
        if completed == nil && pattern == nil {
            statement = switch (cursor != nil, owner != nil) {
            case (false, false): Self.plainListStatement
            case (false, true): Self.plainListOwnedStatement
            case (true, false): Self.plainListAfterStatement
            case (true, true): Self.plainListAfterOwnedStatement
            }
            if let owner { values.append(owner) }
        } else {
            statement = switch (cursor != nil, owner != nil) {
            case (false, false): Self.listStatement
            case (false, true): Self.listOwnedStatement
            case (true, false): Self.listAfterStatement
            case (true, true): Self.listAfterOwnedStatement
            }
            values.append(completed)
            values.append(completed)
            values.append(pattern)
            values.append(pattern)
            values.append(owner)
        }
        values.append(limit + 1)
        database.read(statement.rebinding(values)) { completion($0.map { Page(result: $0, limit: limit) }) }
    }

    /// Built once, bound per request, like the writes. Parameters: the cursor's created_at (µs)
    /// and id (the `After` forms only), completed (twice), the ILIKE pattern (twice), owner, limit.
    private static func makeListStatement(afterCursor: Bool, ownerFilter: StaticString) -> PostgresQuery {
        guard afterCursor else {
            return """
                SELECT \(sql: Todo.columns) FROM todos
                WHERE (\("")::boolean IS NULL OR completed = \("")::boolean)
                  AND (\("")::text IS NULL OR title ILIKE \("")::text)
                  AND (\(sql: ownerFilter)owner = \("")::text)
                ORDER BY created_at DESC, id DESC LIMIT \("")::bigint
                """
        }
        return """
            SELECT \(sql: Todo.columns) FROM todos
            WHERE (created_at, id) < ('epoch'::timestamptz + \("")::bigint * interval '1 microsecond', \("")::uuid)
              AND (\("")::boolean IS NULL OR completed = \("")::boolean)
              AND (\("")::text IS NULL OR title ILIKE \("")::text)
              AND (\(sql: ownerFilter)owner = \("")::text)
            ORDER BY created_at DESC, id DESC LIMIT \("")::bigint
            """
    }

    /// A list without `completed` or `q` (most of them) names no filter at all: the generic plan of
    /// the filtered forms evaluated `($1 IS NULL OR …)` on every row it read, and PostgreSQL spent
    /// ~5 µs more per page than on the plain statement (all backends' CPU, 2026-12-06).
    private static let plainListStatement: PostgresQuery = """
        SELECT \(sql: Todo.columns) FROM todos ORDER BY created_at DESC, id DESC LIMIT \("")::bigint
        """
    private static let plainListOwnedStatement: PostgresQuery = """
        SELECT \(sql: Todo.columns) FROM todos WHERE owner = \("")::text ORDER BY created_at DESC, id DESC LIMIT \("")::bigint
        """
    private static let plainListAfterStatement: PostgresQuery = """
        SELECT \(sql: Todo.columns) FROM todos
        WHERE (created_at, id) < ('epoch'::timestamptz + \("")::bigint * interval '1 microsecond', \("")::uuid)
        ORDER BY created_at DESC, id DESC LIMIT \("")::bigint
        """
    private static let plainListAfterOwnedStatement: PostgresQuery = """
        SELECT \(sql: Todo.columns) FROM todos
        WHERE (created_at, id) < ('epoch'::timestamptz + \("")::bigint * interval '1 microsecond', \("")::uuid)
          AND owner = \("")::text
        ORDER BY created_at DESC, id DESC LIMIT \("")::bigint
        """
    private static let listStatement = makeListStatement(afterCursor: false, ownerFilter: ownerFilter(nil))
    private static let listOwnedStatement = makeListStatement(afterCursor: false, ownerFilter: ownerFilter(""))
    private static let listAfterStatement = makeListStatement(afterCursor: true, ownerFilter: ownerFilter(nil))
    private static let listAfterOwnedStatement = makeListStatement(afterCursor: true, ownerFilter: ownerFilter(""))

    /// `\`, `%` and `_` are LIKE wildcards (backslash is the default escape): match them literally.
    static func escapeLike(_ text: String) -> String {
        var escaped = ""
        for character in text {
            if character == "\\" || character == "%" || character == "_" { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }

    func create(_ input: TodoInput, owner: String?) async throws(PostgresError) -> Todo? {
        let result = try await database.query(Self.createQuery(input, owner: owner))
        return result.rowCount == 0 ? nil : Todo(result, row: 0)
    }

    /// `create` for a callback handler on the loop; `completion` runs on the loop, with the row to
    /// render (as `find`'s).
    func create(_ input: TodoInput, owner: String?, completion: @escaping (Result<TodoRow?, PostgresError>) -> Void) {
        database.query(Self.createQuery(input, owner: owner)) { result in
            completion(result.map { TodoRow($0, row: 0) })
        }
    }

    /// The write statements are built once (stand-in values interpolated) and bound per request,
    /// like `findStatement`: building the SQL text on every write, and hashing that new string
    /// to find its prepared statement, was 7 % of a POST's CPU (perf).
    private static let createStatement = ("""
        INSERT INTO todos (title, description, priority, completed, completed_at, owner)
        VALUES (\(""), \(""), COALESCE(\(""), 'medium'),
                COALESCE(\("")::boolean, false),
                CASE WHEN COALESCE(\("")::boolean, false)
                     THEN COALESCE('epoch'::timestamptz + \("")::bigint * interval '1 millisecond', now()) END,
                \(""))
        RETURNING \(sql: Todo.columns)
        """ as PostgresQuery).sharingCommit()

    /// A todo created open (most are) names only the columns it sets: PostgreSQL then has no
    /// COALESCE or CASE to set up per execution, and no NULL owner to convert into its domain.
    /// The default priority is the column's (`Todo.defaultPriority`). The values are `text`,
    /// which PostgreSQL coerces into the column domains inside the plan: bound as the domains
    /// themselves, each went through `domain_in`, which sets up the domain's checks and an
    /// expression context of its own on every bind. Measured on `POST /todos`, PostgreSQL's CPU
    /// per insert (all backends, medians of 3 interleaved rounds, 2026-12-06): 43.2 → 41.0 µs for
    /// the columns, then 44.9 → 41.0 µs for `::text` (the table had grown in between).
    private static let openCreateStatement = ("""
        INSERT INTO todos (title, description, priority) VALUES (\("")::text, \("")::text, \("")::text) RETURNING \(sql: Todo.columns)
        """ as PostgresQuery).sharingCommit()
    private static let openCreateOwnedStatement = ("""
        INSERT INTO todos (title, description, priority, owner) VALUES (\("")::text, \("")::text, \("")::text, \("")::text) RETURNING \(sql: Todo.columns)
        """ as PostgresQuery).sharingCommit()

    private static func createQuery(_ input: TodoInput, owner: String?) -> PostgresQuery {
        let completed = input.completed ?? nil
        if completed != true {
            // Not completed: completed_at stays NULL whatever `completedAt` says (as below).
            let priority = (input.priority ?? nil) ?? Todo.defaultPriority
            if let owner {
                return openCreateOwnedStatement.rebinding {
                    $0.append(input.title!); $0.append(input.description ?? nil); $0.append(priority); $0.append(owner)
                }
            }
            return openCreateStatement.rebinding { $0.append(input.title!); $0.append(input.description ?? nil); $0.append(priority) }
        }
        return createStatement.rebinding {
            $0.append(input.title!); $0.append(input.description ?? nil); $0.append(input.priority ?? nil); $0.append(completed)
            $0.append(completed); $0.append(millisecondsSQL(input.completedAt)); $0.append(owner)
        }
    }

    enum IdempotentOutcome: Sendable {
        case created(Todo)
        /// The key was used before with this body: the original response (or, if it was never
        /// stored, the todo it created).
        case replay(body: String?, todoID: String)
        /// The key was used before with another body.
        case conflict
    }

    /// Claims the key and creates the todo in one statement: two requests with the same key
    /// cannot both create (the second waits on the key's unique index, then finds it taken).
    /// Keys are per owner (`''` without one): another owner's key is another key.
    func create(_ input: TodoInput, idempotencyKey key: String, requestHash: String, owner: String?) async throws(PostgresError) -> IdempotentOutcome {
        let completedAt = Self.millisecondsSQL(input.completedAt)
        let keyOwner = owner ?? ""
        let result = try await database.query(PostgresQuery("""
            WITH claimed AS (
                INSERT INTO idempotency_keys (owner, key, request_hash, todo_id) VALUES (\(keyOwner), \(key), \(requestHash), gen_random_uuid())
                ON CONFLICT (owner, key) DO UPDATE
                    SET request_hash = EXCLUDED.request_hash, todo_id = EXCLUDED.todo_id, response = NULL, created_at = now()
                    WHERE idempotency_keys.created_at < now() - interval '24 hours'
                RETURNING todo_id)
            INSERT INTO todos (id, title, description, priority, completed, completed_at, owner)
            SELECT todo_id, \(input.title!), \(input.description ?? nil), COALESCE(\(input.priority ?? nil), 'medium'),
                   COALESCE(\(input.completed ?? nil)::boolean, false),
                   CASE WHEN COALESCE(\(input.completed ?? nil)::boolean, false)
                        THEN COALESCE('epoch'::timestamptz + \(completedAt)::bigint * interval '1 millisecond', now()) END,
                   \(owner)
            FROM claimed
            RETURNING \(sql: Todo.columns)
            """).changing(row: Self.keyRow(key, owner: keyOwner)))
        if result.rowCount == 1, let todo = Todo(result, row: 0) {
            return .created(todo)
        }
        let existing = try await database.query("SELECT request_hash, todo_id, response FROM idempotency_keys WHERE owner = \(keyOwner) AND key = \(key)")
        guard existing.rowCount == 1, let hash = existing.string(0, 0), let todoID = existing.uuid(0, 1) else {
            throw PostgresError(.server, message: "idempotency key vanished")
        }
        return hash == requestHash ? .replay(body: existing.string(0, 2), todoID: todoID) : .conflict
    }

    func storeResponse(key: String, todoID: String, body: String, owner: String?) async throws(PostgresError) {
        let keyOwner = owner ?? ""
        _ = try await database.query(PostgresQuery("""
            UPDATE idempotency_keys SET response = \(body) WHERE owner = \(keyOwner) AND key = \(key) AND todo_id = \(todoID)::uuid
            """).changing(row: Self.keyRow(key, owner: keyOwner)))
    }

    /// Writes to one key wait for each other in the process (`changing(row:)`).
    private static func keyRow(_ key: String, owner: String) -> String { "idempotency-key:\(owner.utf8.count):\(owner):\(key)" }

    /// Keys older than 24 hours are dead weight; deleted now and then by the API.
    func deleteExpiredKeys() async throws(PostgresError) {
        _ = try await database.query("DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'")
    }

    /// PUT (every writable field given) and PATCH (some given) in one conditional UPDATE: the
    /// If-Match check (`versions`) and the write are one statement, so two clients holding the
    /// same ETag cannot both win.
    /// A callback, like `find`: the common case is this one statement, answered on the loop
    /// without a task (a task's hops cost about a quarter of a one-query request's CPU, perf).
    func update(id: String, _ input: TodoInput, replace: Bool, versions: [Int]?, owner: String?, deadline: MonotonicTime,
                completion: @escaping (Result<TodoRow?, PostgresError>) -> Void) {
        let completedGiven = replace || input.completed != nil
        let completed = input.completed ?? nil
        let completedAt = Self.millisecondsSQL(input.completedAt)
        let versionList = Self.versionList(versions)
        let query = (owner == nil ? Self.updateStatement : Self.updateOwnedStatement).rebinding {
            $0.append(input.title)
            $0.append(replace || input.description != nil); $0.append(input.description ?? nil)
            $0.append(replace || input.priority != nil); $0.append(input.priority ?? nil)
            $0.append(completedGiven); $0.append(completed); $0.append(completedGiven); $0.append(completed)
            $0.append(completedAt); $0.append(completedAt); $0.append(input.completedAt != nil)
            $0.append(id); $0.append(owner); $0.append(versionList); $0.append(versionList)
        }
        database.query(query.changing(row: id), deadline: deadline) { completion($0.map { TodoRow($0, row: 0) }) }
    }

    /// Parameters, in order: title; description given, description; priority given, priority;
    /// completed given, completed (twice: the new value, and in `completed_at`'s rule); completed_at
    /// in milliseconds (twice), completed_at given; id, owner; the If-Match versions (twice).
    private static func makeUpdateStatement(_ ownerFilter: StaticString) -> PostgresQuery {
        """
        UPDATE todos SET
            title = COALESCE(\(""), title),
            description = CASE WHEN \("")::boolean THEN \("")::text ELSE description END,
            priority = CASE WHEN \("")::boolean THEN COALESCE(\("")::text, 'medium') ELSE priority END,
            completed = CASE WHEN \("")::boolean THEN COALESCE(\("")::boolean, false) ELSE completed END,
            completed_at = CASE
                WHEN NOT (CASE WHEN \("")::boolean THEN COALESCE(\("")::boolean, false) ELSE completed END) THEN NULL
                WHEN \("")::bigint IS NOT NULL THEN 'epoch'::timestamptz + \("")::bigint * interval '1 millisecond'
                WHEN completed AND completed_at IS NOT NULL AND NOT \("")::boolean THEN completed_at
                ELSE now() END,
            updated_at = now(),
            version = version + 1
        WHERE id = \("")::uuid AND (\(sql: ownerFilter)owner = \("")::text)
          AND (\("")::bigint[] IS NULL OR version = ANY(\("")::bigint[]))
        RETURNING \(sql: Todo.columns)
        """
    }

    /// Updates and deletes share their commit with the iteration's other row writes
    /// (`PostgresConnection`, "commit groups"): like inserts, they were bound by one commit (one
    /// WAL flush) each, not by CPU.
    private static let updateStatement = makeUpdateStatement(ownerFilter(nil)).sharingCommit()
    private static let updateOwnedStatement = makeUpdateStatement(ownerFilter("")).sharingCommit()

    func delete(id: String, versions: [Int]?, owner: String?, deadline: MonotonicTime,
                completion: @escaping (Result<TodoRow?, PostgresError>) -> Void) {
        let versionList = Self.versionList(versions)
        let query = (owner == nil ? Self.deleteStatement : Self.deleteOwnedStatement).rebinding {
            $0.append(id); $0.append(owner); $0.append(versionList); $0.append(versionList)
        }
        database.query(query.changing(row: id), deadline: deadline) { completion($0.map { TodoRow($0, row: 0) }) }
    }

    /// Parameters: id, owner, the If-Match versions (twice).
    private static func makeDeleteStatement(_ ownerFilter: StaticString) -> PostgresQuery {
        """
        DELETE FROM todos WHERE id = \("")::uuid AND (\(sql: ownerFilter)owner = \("")::text)
          AND (\("")::bigint[] IS NULL OR version = ANY(\("")::bigint[]))
        RETURNING \(sql: Todo.columns)
        """
    }

    private static let deleteStatement = makeDeleteStatement(ownerFilter(nil)).sharingCommit()
    private static let deleteOwnedStatement = makeDeleteStatement(ownerFilter("")).sharingCommit()

    /// `If-Match` versions as a PostgreSQL array literal (`{1,2}`), nil when there is no condition.
    private static func versionList(_ versions: [Int]?) -> String? {
        versions.map { "{" + $0.map(String.init).joined(separator: ",") + "}" }
    }
}

/// The opaque `nextCursor`: the last row's exact created_at (µs) and id, base64url-encoded so
/// clients treat it as a token, not something to build.
struct TodoCursor: Sendable, Equatable {
    let createdAtMicros: Int64
    let id: String

    var token: String { Base64URL.encode(Array("\(createdAtMicros).\(id)".utf8)) }

    init(createdAtMicros: Int64, id: String) {
        self.createdAtMicros = createdAtMicros
        self.id = id
    }

    init?(token: String) {
        guard token.utf8.count <= 128, let bytes = Base64URL.decode(token),
              let text = String(validating: bytes, as: UTF8.self), let dot = text.firstIndex(of: ".") else { return nil }
        let micros = text[..<dot]
        let id = String(text[text.index(after: dot)...])
        guard let value = Int64(micros), TodoID.isValid(id) else { return nil }
        createdAtMicros = value
        self.id = id
    }
}
