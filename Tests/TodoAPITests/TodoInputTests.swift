import JSON
import Testing
@testable import TodoAPI

/// Field rules on parsed bodies, without a server: lengths in code points (as PostgreSQL's
/// `char_length` counts), NUL refused, titles trimmed of Unicode white space.
struct TodoInputTests {
    private func parse(_ json: String, mode: TodoInput.Mode = .create) throws -> Result<TodoInput, TodoInput.Invalid> {
        try TodoInput.parse(json: Array(json.utf8), mode: mode)
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
            // Every scalar as a \u escape: the tab and U+0085 cannot stand in JSON text as they are.
            let escaped = given.unicodeScalars.map { "\\u" + String(repeating: "0", count: 4 - String($0.value, radix: 16).count) + String($0.value, radix: 16) }.joined()
            #expect((try? parse(#"{"title":""# + escaped + #""}"#).get())?.title == expected, "\(given.unicodeScalars.map(\.value))")
        }
    }

    /// A body is read member by member: every field, every problem in the members' order, names
    /// told apart by their decoded bytes (escaped or not, case-sensitive), read-only fields
    /// ignored, and malformed JSON thrown whatever came before it.
    @Test func bodiesAreReadMemberByMember() throws {
        let plain = try parse(#"{"title":" padded ","description":null,"priority":"high","completed":true,"completedAt":"2026-01-02T03:04:05Z","id":"x","createdAt":1,"updatedAt":null}"#).get()
        #expect(plain.title == "padded" && plain.description == .some(nil) && plain.priority == .some("high"))
        #expect(plain.completed == .some(true) && plain.completedAt == .some(1_767_323_045_000))
        #expect(try parse(#"{"tit\u006ce":"escaped name"}"#).get().title == "escaped name")

        let wrongTypes = #"{"title":null,"description":5,"priority":[],"completed":"yes","completedAt":{},"colour":"red"}"#
        let expected: [(String, String)] = [
            ("description", "must be a string or null, got a number"), ("priority", "must be a string, got an array"),
            ("completed", "must be a boolean, got a string"),
            ("completedAt", "must be an RFC 3339 string, epoch milliseconds or null, got an object"), ("colour", "is not a field of a todo"),
        ]
        guard case .failure(let created) = try parse(wrongTypes), case .failure(let patched) = try parse(wrongTypes, mode: .patch) else {
            Issue.record("accepted"); return
        }
        #expect(created.errors == [.init(field: "title", message: "must be a string, got null")] + expected.map { .init(field: $0.0, message: $0.1) })
        #expect(patched.errors == [.init(field: "title", message: "is required and cannot be removed")] + expected.map { .init(field: $0.0, message: $0.1) })

        guard case .failure(let capital) = try parse(#"{"Title":"case matters"}"#) else { Issue.record("Title accepted"); return }
        #expect(capital.errors == [.init(field: "Title", message: "is not a field of a todo"), .init(field: "title", message: "is required")])
        guard case .failure(let array) = try parse("[]") else { Issue.record("[] accepted"); return }
        #expect(array.errors == [.init(field: "", message: "the body must be a JSON object, got an array")])
        #expect(throws: JSONParser.Failure.self) { _ = try parse(#"{"colour":"red","title":"a","title":"b"}"#) }
    }
}
