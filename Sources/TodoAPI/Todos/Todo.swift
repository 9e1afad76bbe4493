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
    var etag: String { "\"\(version)\"" }

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
    var envelope: [UInt8] {
        var json = JSONWriter(capacity: 320)
        json.raw("{\"todo\":")
        write(to: &json)
        json.raw("}")
        return json.bytes
    }
}

/// Todo ids are UUIDs; anything else cannot name a todo (404, never 400 or 500: the seed clients
/// probe random strings).
enum TodoID {
    static func isValid(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { $0.count == 36 && UUIDSyntax.isValid($0) }
    }
}
