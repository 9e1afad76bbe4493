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

    /// `forEachMember` against `parse` on valid and malformed texts, generated ones included:
    /// the same failure (reason and offset), the same members in order, or the same non-object value.
    @Test func membersStreamAsTheDocumentHasThem() throws {
        var texts = [
            "", " ", "{}", " { } ", "[1]", "\"x\"", "3", "null", "{\"a\":1,}", "{\"a\" 1}", "{\"a\":1 \"b\":2}", "{\"a\":1", "{\"a",
            #"{"a":1,"a":2}"#, #"{"a":1,"\u0061":2}"#, #"{"\u0061":1,"a":2}"#, #"{"é":1,"é":2}"#, #"{"\u00e9":1,"é":2}"#,
            #"{"a\"b":true,"a":null}"#, "{\"\u{1}\":1}", #"{"x":{"y":[1,2,{"z":"w"}]},"t":"u"} "#, "{} x", "{\"a\":01}",
            #"{"title":"bench todo","description":"created by the benchmark","priority":"medium"}"#,
            #"{"":1,"":2}"#, #"{"K":1,"\u212A":2}"#, #"{"\u212A":1,"K":2}"#, #"{"é":1,"e\u0301":2}"#, #"{"\u00e9":1,"e\u0301":2}"#, "{\"k\":" + String(repeating: "[", count: JSONParser.maxDepth) + String(repeating: "]", count: JSONParser.maxDepth) + "}",
        ]
        texts.append("{" + (0..<40).map { "\"k\($0)\":\($0)" }.joined(separator: ",") + ",\"k7\":0}")
        texts.append("{" + (0..<40).map { "\"k\($0)\":\($0)" }.joined(separator: ",") + "}")
        // Past the scanned names (a set then), with an escaped repeat and a canonical equivalent.
        texts.append("{" + (0..<40).map { "\"k\($0)\":\($0)" }.joined(separator: ",") + #","\u006b7":0}"#)
        texts.append("{" + (0..<40).map { "\"k\($0)\":\($0)" }.joined(separator: ",") + #","K":0,"\u212A":1}"#)
        // Every prefix of a few objects: every way a body can stop short.
        for whole in [#"{"a":"x\ny","b":[true,false],"c\u00e9":{"d":null}}"#, #"{"title":"t","completedAt":1700000000000}"#] {
            for end in whole.indices { texts.append(String(whole[..<end])) }
        }
        var bytesOnly: [[UInt8]] = texts.map { Array($0.utf8) }
        bytesOnly.append([0x7B, 0x22, 0xC3, 0x28, 0x22, 0x3A, 0x31, 0x7D])  // invalid UTF-8 in a name
        bytesOnly.append([0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xED, 0xA0, 0x80, 0x22, 0x7D])  // and in a value
        for bytes in bytesOnly {
            let label = String(decoding: bytes, as: UTF8.self)
            var expected: Result<JSONValue, JSONParser.Failure>
            do { expected = .success(try JSONParser.parse(bytes)) } catch { expected = .failure(error) }
            var visited: [(key: String, value: JSONValue)] = []
            var streamed: Result<JSONValue?, JSONParser.Failure>
            do {
                streamed = .success(try JSONParser.forEachMember(of: bytes) { name, value in
                    visited.append((String(decoding: name, as: UTF8.self), value))
                })
            } catch { streamed = .failure(error) }
            switch (expected, streamed) {
            case (.failure(let a), .failure(let b)):
                #expect(a == b, "\(label)")
            case (.success(.object(let members)), .success(nil)):
                #expect(JSONValue.object(visited) == .object(members), "\(label)")
            case (.success(let value), .success(let other?)):
                #expect(value == other, "\(label)")
                #expect(visited.isEmpty, "\(label)")
            default:
                Issue.record("\(label): parse \(expected), forEachMember \(streamed)")
            }
        }
    }

    /// Strings are scanned eight bytes at a time: a quote, an escape, a control character or a
    /// non-ASCII byte at every position of the first words is still found.
    @Test func stringsAreReadTheSameAtEveryPosition() throws {
        // Beside ASCII, bytes whose low seven bits look like a quote, a backslash or a control
        // character (0xA2, 0xDC, 0x81): inside "é"-like pairs they must pass as text.
        for filler in [Array("a".utf8), [0xC2, 0xA2], [0xC3, 0x9C], [0xC2, 0x81]] {
            for count in 1..<12 {
                let text = Array(repeating: filler, count: count).flatMap { $0 }
                #expect(try JSONParser.parse([0x22] + text + [0x22]) == .string(String(decoding: text, as: UTF8.self)), "\(filler) \(count)")
            }
        }
        for length in 1..<20 {
            for position in 0..<length {
                var plain = Array(repeating: UInt8(ascii: "a"), count: length)
                #expect(try JSONParser.parse([0x22] + plain + [0x22]) == .string(String(repeating: "a", count: length)))
                plain[position] = 0x01
                let control = failure(String(decoding: [0x22] + plain + [0x22], as: UTF8.self))
                #expect(control?.offset == position + 1 && control?.reason == "control character in a string", "\(length) \(position)")
                plain[position] = UInt8(ascii: "\"")
                // The string ends at the quote: what follows is data after the value.
                let quoted = failure(String(decoding: [0x22] + plain + [0x22], as: UTF8.self))
                #expect(quoted?.offset == position + 2 && quoted?.reason == "unexpected data after the JSON value", "\(length) \(position)")
                var escaped = Array(repeating: UInt8(ascii: "a"), count: length)
                escaped.replaceSubrange(position..<(position + 1), with: Array(#"\n"#.utf8))
                var expected = String(repeating: "a", count: length)
                expected.replaceSubrange(expected.index(expected.startIndex, offsetBy: position)..<expected.index(expected.startIndex, offsetBy: position + 1), with: "\n")
                #expect(try JSONParser.parse([0x22] + escaped + [0x22]) == .string(expected), "\(length) \(position)")
                var accented = Array(repeating: UInt8(ascii: "a"), count: length)
                accented.replaceSubrange(position..<(position + 1), with: Array("é".utf8))
                #expect(try JSONParser.parse([0x22] + accented + [0x22]) == .string(String(decoding: accented, as: UTF8.self)), "\(length) \(position)")
                accented[position + 1] = 0x28  // a lead byte without its continuation
                #expect((try? JSONParser.parse([0x22] + accented + [0x22])) == nil, "\(length) \(position)")
            }
        }
    }
}
