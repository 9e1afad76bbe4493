import JSON
import Testing
@testable import TodoAPI

/// Field rules on parsed bodies, without a server: lengths in code points (as PostgreSQL's
/// `char_length` counts), NUL refused, titles trimmed of Unicode white space.
struct TodoInputTests {
    private func parse(_ json: String) throws -> Result<TodoInput, TodoInput.Invalid> {
        TodoInput.parse(try JSONParser.parse(Array(json.utf8)), mode: .create)
    }

    @Test func lengthsCountCodePointsNotBytes() throws {
        for (piece, count) in [("a", 200), ("é", 200), ("😀", 200), ("漢", 200)] {
            let title = String(repeating: piece, count: count)
            #expect((try? parse(#"{"title":"\#(title)"}"#).get())?.title == title, "\(piece)")
            let tooLong = try parse(#"{"title":"\#(title + piece)"}"#)
            guard case .failure(let invalid) = tooLong else { Issue.record("\(piece) × 201 accepted"); continue }
            #expect(invalid.errors.map(\.message) == ["must be at most 200 characters, got 201"])
        }
    }

    @Test func nulIsRefusedAndEmptyTitlesToo() throws {
        guard case .failure(let nul) = try parse(#"{"title":"a\u0000b"}"#) else { Issue.record("NUL accepted"); return }
        #expect(nul.errors.map(\.message) == ["must not contain NUL characters"])
        guard case .failure(let empty) = try parse(#"{"title":" \u3000\t"}"#) else { Issue.record("blank accepted"); return }
        #expect(empty.errors.map(\.message) == ["must not be empty"])
    }

    @Test func titlesAreTrimmedOfUnicodeWhiteSpaceOnly() throws {
        let cases = [("plain", "plain"), ("  padded\t", "padded"), ("\u{3000}wide\u{00A0}", "wide"), ("in ner", "in ner"),
                     ("x\u{2003}", "x"), ("é", "é"), ("\u{0085}next", "next")]
        for (given, expected) in cases {
            let body = JSONValue.object([(key: "title", value: .string(given))])
            #expect((try? TodoInput.parse(body, mode: .create).get())?.title == expected, "\(given.unicodeScalars.map(\.value))")
        }
    }

    /// Bodies read member by member (`parse(json:)`, what the routes use) give what the document
    /// gives: the same input or the same errors in the same order.
    @Test func streamedBodiesReadAsDocuments() throws {
        let bodies = [
            #"{"title":"bench todo","description":"created by the benchmark","priority":"medium"}"#,
            #"{"title":" padded ","completed":true,"completedAt":"2026-01-02T03:04:05Z","id":"x","createdAt":1,"updatedAt":null}"#,
            #"{"title":null,"description":5,"priority":[],"completed":"yes","completedAt":{},"colour":"red"}"#,
            #"{"tit\u006ce":"escaped name","completedAt":1700000000000}"#, #"{"description":null,"priority":null,"completed":null}"#,
            #"{}"#, #"[]"#, #""title""#, #"{"Title":"case matters"}"#, #"{"title":"","completedAt":1.5}"#,
        ]
        for mode in [TodoInput.Mode.create, .replace, .patch] {
            for body in bodies {
                let document = TodoInput.parse(try JSONParser.parse(Array(body.utf8)), mode: mode)
                let streamed = try TodoInput.parse(json: Array(body.utf8), mode: mode)
                switch (document, streamed) {
                case (.success(let a), .success(let b)):
                    #expect(a.title == b.title && a.description == b.description && a.priority == b.priority
                            && a.completed == b.completed && a.completedAt == b.completedAt, "\(mode) \(body)")
                case (.failure(let a), .failure(let b)):
                    #expect(a.errors == b.errors, "\(mode) \(body)")
                default:
                    Issue.record("\(mode) \(body): \(document) vs \(streamed)")
                }
            }
        }
        #expect(throws: JSONParser.Failure.self) { _ = try TodoInput.parse(json: Array(#"{"title":"a","title":"b"}"#.utf8), mode: .create) }
    }
}
