import JSON
import Testing

/// The parser on its own (the API tests reach it through request bodies; DB_SECRET through the
/// Postgres settings).
@Suite struct JSONParserTests {
    private func parse(_ text: String) throws(JSONParser.Failure) -> JSONValue {
        try JSONParser.parse(Array(text.utf8))
    }

    private func failure(_ text: String) -> JSONParser.Failure? {
        do {
            _ = try parse(text)
            return nil
        } catch {
            return error
        }
    }

    @Test func valuesOfEveryType() throws {
        let value = try parse(#" {"a": [true, false, null, -0, 12.5e+3, "x"], "b": {}} "#)
        #expect(value == .object([
            (key: "a", value: .array([.bool(true), .bool(false), .null, .number("-0"), .number("12.5e+3"), .string("x")])),
            (key: "b", value: .object([])),
        ]))
    }

    @Test func membersKeepTheirOrderAndNumbersTheirText() throws {
        guard case .object(let members) = try parse(#"{"z":1,"a":1.0,"m":1E2}"#) else {
            Issue.record("not an object")
            return
        }
        #expect(members.map(\.key) == ["z", "a", "m"])
        #expect(members.map(\.value) == [.number("1"), .number("1.0"), .number("1E2")])
    }

    @Test func escapesAndSurrogatePairs() throws {
        #expect(try parse(#""\"\\\/\b\f\n\r\t""#) == .string("\"\\/\u{8}\u{C}\n\r\t"))
        #expect(try parse(#""\u00e9\u20AC\ud83d\ude00""#) == .string("é€😀"))
        #expect(try parse("\"é😀\"") == .string("é😀"))
    }

    @Test func malformedDocumentsAreRefusedWithTheirOffset() {
        let cases: [(String, String, Int)] = [
            ("", "unexpected end of input", 0),
            ("{\"a\":1,}", "expected a member name", 7),
            ("[1,]", "unexpected character", 3),
            ("01", "leading zeros are not allowed", 1),
            ("1.", "invalid number", 2),
            ("-", "invalid number", 1),
            ("tru", "invalid literal", 0),
            ("\"a", "unterminated string", 2),
            ("\"\u{1}\"", "control character in a string", 1),
            (#""\x""#, "invalid escape", 3),
            (#""\ud83d""#, "unpaired surrogate", 7),
            (#""\ude00""#, "unpaired surrogate", 7),
            ("{} x", "unexpected data after the JSON value", 3),
            (#"{"a":1,"a":2}"#, "duplicate member \"a\"", 10),
        ]
        for (text, reason, offset) in cases {
            let found = failure(text)
            #expect(found?.reason == reason && found?.offset == offset, "\(text): \(String(describing: found))")
        }
    }

    /// Duplicate names are found by a scan in small objects and by a set past
    /// `scannedMemberNames` members: the same answer either way, wherever the repeat is.
    @Test func duplicateNamesAreFoundInSmallAndLargeObjects() throws {
        for size in [2, JSONParser.scannedMemberNames, JSONParser.scannedMemberNames + 1, 40] {
            let names = (0..<size).map { "k\($0)" }
            let members = names.map { "\"\($0)\":1" }
            guard case .object(let parsed) = try parse("{" + members.joined(separator: ",") + "}") else {
                Issue.record("not an object"); continue
            }
            #expect(parsed.map { $0.key } == names)
            for repeated in [0, size / 2, size - 1] {
                let text = "{" + (members + ["\"k\(repeated)\":2"]).joined(separator: ",") + "}"
                #expect(failure(text)?.reason == "duplicate member \"k\(repeated)\"", "\(size) \(repeated)")
            }
        }
    }

    @Test func invalidUTF8IsRefused() {
        #expect(throws: JSONParser.Failure.self) { _ = try JSONParser.parse([0x22, 0xC3, 0x28, 0x22]) }
        #expect(throws: JSONParser.Failure.self) { _ = try JSONParser.parse([0x22, 0xED, 0xA0, 0x80, 0x22]) }
    }

    @Test func nestingIsBounded() throws {
        let deepest = String(repeating: "[", count: JSONParser.maxDepth) + String(repeating: "]", count: JSONParser.maxDepth)
        _ = try parse(deepest)
        let tooDeep = String(repeating: "[", count: JSONParser.maxDepth + 1) + String(repeating: "]", count: JSONParser.maxDepth + 1)
        #expect(failure(tooDeep)?.reason == "nesting too deep")
        // Far deeper than the stack could take: refused at the limit, never recursed into.
        #expect(failure(String(repeating: "{\"a\":", count: 100_000))?.reason == "nesting too deep")
    }
}
