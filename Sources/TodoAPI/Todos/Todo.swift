import Net
import Observability
import Postgres
import Security

/// A todo as stored and as served. Times are Unix milliseconds; `createdAtMicros` keeps the exact
/// database value for keyset cursors.
struct Todo: Sendable {
    var id: String
    var title: String
    var description: String?
    var priority: String
    var completed: Bool
    var completedAt: Int64?
    var createdAt: Int64
    var createdAtMicros: Int64
    var updatedAt: Int64
    var version: Int

    /// The columns every statement returns, in this order (see `init(row:)`).
    static let columns: StaticString = "id, title, description, priority, completed, completed_at, created_at, updated_at, version"
    /// The priority of a todo created without one, as the open create binds it: the same as the
    /// column's default (Migrations/0001) and the other statements' `COALESCE(…, 'medium')`.
    static let defaultPriority = "medium"

    init?(_ result: PostgresResult, row: Int) {
        guard let id = result.uuid(row, 0), let title = result.string(row, 1), let priority = result.string(row, 3),
              let completed = result.bool(row, 4), let createdAtMicros = result.timestampMicroseconds(row, 6),
              let updatedAt = result.timestampMilliseconds(row, 7), let version = result.int(row, 8) else { return nil }
        self.id = id
        self.title = title
        self.description = result.string(row, 2)
        self.priority = priority
        self.completed = completed
        self.completedAt = result.timestampMilliseconds(row, 5)
        self.createdAtMicros = createdAtMicros
        self.createdAt = createdAtMicros.floorDivided(by: 1000).quotient
        self.updatedAt = updatedAt
        self.version = version
    }

    /// Strong validator (RFC 9110 §8.8.3): the row version changes with every write.
    var etag: String { EntityTags.strong(version) }

    func write(to json: inout JSONWriter) {
        json.raw("{\"id\":")
        json.string(id)
        json.raw(",\"title\":")
        json.string(title)
        json.raw(",\"description\":")
        json.optionalString(description)
        json.raw(",\"priority\":")
        json.string(priority)
        json.raw(",\"completed\":")
        json.bool(completed)
        json.raw(",\"completedAt\":")
        if let completedAt { Timestamp.format(milliseconds: completedAt, into: &json) } else { json.raw("null") }
        json.raw(",\"createdAt\":")
        Timestamp.format(milliseconds: createdAt, into: &json)
        json.raw(",\"updatedAt\":")
        Timestamp.format(milliseconds: updatedAt, into: &json)
        json.raw("}")
    }

    /// `{"todo":{...}}`
    var envelope: [UInt8] { Self.envelope(write) }

    /// `{"todo":` what `write` writes `}`.
    static func envelope(_ write: (inout JSONWriter) -> Void) -> [UInt8] {
        var json = JSONWriter(capacity: 320)
        json.raw("{\"todo\":")
        write(&json)
        json.raw("}")
        return json.take()
    }
}

/// A row of a result in `Todo.columns` order, rendered into JSON straight from libpq's bytes:
/// the read paths (`GET /todos/{id}`, a list page of up to 100) make no `Todo` and no `String`
/// per field (an id, a title and a description were three allocations per todo, and
/// building them half the CPU of a list page's rendering, perf). Valid while `result` lives.
struct TodoRow {
    let result: PostgresResult
    let row: Int

    /// nil when a column `Todo(_:row:)` needs is NULL or malformed (that row is skipped, as there).
    init?(_ result: PostgresResult, row: Int) {
        guard row < result.rowCount, result.value(row, 0)?.count == 16, result.value(row, 1) != nil,
              result.value(row, 3) != nil, result.value(row, 4)?.count == 1, result.value(row, 6)?.count == 8,
              result.value(row, 7)?.count == 8, result.int(row, 8) != nil else { return nil }
        self.result = result
        self.row = row
    }

    var version: Int { result.int(row, 8) ?? 0 }
    var createdAtMicros: Int64 { result.timestampMicroseconds(row, 6) ?? 0 }
    var id: String { result.uuid(row, 0) ?? "" }
    /// Strong validator (RFC 9110 §8.8.3), as `Todo.etag`.
    var etag: String { EntityTags.strong(version) }

    /// The same bytes as `Todo(result, row:).write(to:)` (`TodoRowTests`).
    func write(to json: inout JSONWriter) {
        json.raw("{\"id\":\"")
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 36) { text in
            PostgresType.writeUUID(result.value(row, 0)!, into: text)
            json.raw(bytes: UnsafeRawBufferPointer(text))
        }
        json.raw("\",\"title\":")
        json.string(utf8: result.value(row, 1)!)
        json.raw(",\"description\":")
        if let description = result.value(row, 2) { json.string(utf8: description) } else { json.raw("null") }
        json.raw(",\"priority\":")
        json.string(utf8: result.value(row, 3)!)
        json.raw(",\"completed\":")
        json.bool(result.bool(row, 4) ?? false)
        json.raw(",\"completedAt\":")
        if let completedAt = result.timestampMilliseconds(row, 5) { Timestamp.format(milliseconds: completedAt, into: &json) } else { json.raw("null") }
        json.raw(",\"createdAt\":")
        Timestamp.format(milliseconds: createdAtMicros.floorDivided(by: 1000).quotient, into: &json)
        json.raw(",\"updatedAt\":")
        Timestamp.format(milliseconds: result.timestampMilliseconds(row, 7) ?? 0, into: &json)
        json.raw("}")
    }

    /// `{"todo":{...}}`
    var envelope: [UInt8] { Todo.envelope(write) }
}

/// Todo ids are UUIDs; anything else cannot name a todo (404, never 400 or 500: the seed clients
/// probe random strings).
enum TodoID {
    static func isValid(_ text: String) -> Bool {
        text.withBorrowedUTF8 { $0.count == 36 && UUIDSyntax.isValid($0) }
    }
}
