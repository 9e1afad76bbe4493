import Observability
import Postgres
import Testing
import TestSupport
@testable import TodoAPI

/// A row rendered straight from libpq's bytes (`TodoRow`, the read paths) is the same JSON as the
/// `Todo` decoded from it (the write paths), whatever the text holds, over a real PostgreSQL.
struct TodoRowTests {
    @Test func rowsRenderAsTheirDecodedTodos() async throws {
        let db = try LoopDatabase(settings: TestDatabase.settings())
        let texts = ["plain", #"quote " and back\slash"#, "line\nbreak\ttab\r", "control \u{1}\u{1F} chars", "caf\u{e9} \u{6F22}\u{5B57} \u{1F600}",
                     String(repeating: "x", count: 2000), ""]
        var array = JSONWriter()
        array.raw("[")
        for (i, text) in texts.enumerated() {
            if i > 0 { array.raw(",") }
            array.string(text)
        }
        array.raw("]")
        let json = String(decoding: array.bytes, as: UTF8.self)
        let result = try await db.run { database in
            try await database.query("""
                SELECT gen_random_uuid() AS id, t AS title, CASE WHEN n % 2 = 0 THEN NULL ELSE t || \("!") END AS description,
                       CASE WHEN n % 3 = 0 THEN \("high") ELSE t END AS priority, n % 2 = 0 AS completed,
                       CASE WHEN n % 2 = 0 THEN now() - n * interval '1 day' END AS completed_at,
                       timestamptz '1969-12-31 23:59:59.9995+00' + n * interval '1 hour 0.0013 second' AS created_at,
                       now() AS updated_at, (n * 1000)::bigint AS version
                FROM json_array_elements_text(\(json)::json) WITH ORDINALITY AS u(t, n)
                """)
        }
        #expect(result.rowCount == texts.count)
        // Binary uuids come out as PostgreSQL's own text for them.
        let uuids = try await db.run { database in
            try await database.query("SELECT u::uuid AS id, u::uuid::text AS text FROM json_array_elements_text(\(#"["00000000-0000-0000-0000-000000000000","FFFFFFFF-ffff-4aBc-8def-0123456789ab","a0b1c2d3-e4f5-4607-8809-0a1b2c3d4e5f"]"#)::json) AS j(u)")
        }
        for row in 0..<uuids.rowCount {
            #expect(uuids.uuid(row, 0) != nil && uuids.uuid(row, 0) == uuids.string(row, 1))
        }
        for row in 0..<result.rowCount {
            guard let todo = Todo(result, row: row), let direct = TodoRow(result, row: row) else {
                Issue.record("row \(row) not decoded")
                continue
            }
            var expected = JSONWriter()
            todo.write(to: &expected)
            var rendered = JSONWriter()
            direct.write(to: &rendered)
            #expect(rendered.bytes == expected.bytes, "\(String(decoding: expected.bytes, as: UTF8.self))")
            #expect(direct.etag == todo.etag && direct.id == todo.id && direct.createdAtMicros == todo.createdAtMicros)
            #expect(direct.envelope == todo.envelope)
        }
    }
}
