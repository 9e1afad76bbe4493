/// A strict JSON parser over bytes (RFC 8259): UTF-8 validated, no trailing garbage, no duplicate
/// object keys (ambiguous: RFC 8259 §4 leaves their meaning open), nesting bounded. Pure: no I/O.
public struct JSONParser {
    public struct Failure: Error, Equatable, CustomStringConvertible {
        public let offset: Int
        public let reason: String
        public var description: String { "\(reason) at byte \(offset)" }
    }

    /// Deeper than this is refused: recursion must not be driven by the client.
    public static let maxDepth = 64

    private let bytes: UnsafeRawBufferPointer
    private var index = 0

    private init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    public static func parse(_ bytes: [UInt8]) throws(Failure) -> JSONValue {
        let result = bytes.withUnsafeBytes { raw -> Result<JSONValue, Failure> in
            var parser = JSONParser(raw)
            return Result { () throws(Failure) -> JSONValue in
                parser.skipWhitespace()
                let value = try parser.parseValue(depth: 0)
                parser.skipWhitespace()
                guard parser.index == raw.count else { throw parser.failure("unexpected data after the JSON value") }
                return value
            }
        }
        return try result.get()
    }

    /// The members of a top-level object, one at a time, without building the document: `member`
    /// gets each name (decoded UTF-8) and its value, in order. Returns nil for an object, and the
    /// value itself for any other JSON text (whose members are not visited). Accepts and refuses
    /// exactly what `parse` does, with the same failures; on a failure, members before it were
    /// visited. For a request body read into fields: the document's member array, a `String` for
    /// every name and the document's teardown were ~2,000 instructions of a `POST /todos`
    /// (callgrind).
    public static func forEachMember(of bytes: [UInt8], _ member: (_ name: UnsafeRawBufferPointer, _ value: JSONValue) -> Void) throws(Failure) -> JSONValue? {
        let result = bytes.withUnsafeBytes { raw -> Result<JSONValue?, Failure> in
            var parser = JSONParser(raw)
            return Result { () throws(Failure) -> JSONValue? in
                parser.skipWhitespace()
                var value: JSONValue?
                if parser.index < raw.count, raw[parser.index] == UInt8(ascii: "{") {
                    try parser.streamObject(depth: 1, member)
                } else {
                    value = try parser.parseValue(depth: 0)
                }
                parser.skipWhitespace()
                guard parser.index == raw.count else { throw parser.failure("unexpected data after the JSON value") }
                return value
            }
        }
        return try result.get()
    }

    /// A member name: where its bytes are when it has no escape and is ASCII (as written), else
    /// the decoded string.
    private struct MemberName {
        var start: Int
        var end: Int
        var decoded: String?

        func withBytes<R>(in bytes: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> R) -> R {
            guard var decoded else { return body(UnsafeRawBufferPointer(rebasing: bytes[start..<end])) }
            return decoded.withUTF8 { body(UnsafeRawBufferPointer($0)) }
        }
    }

    /// An object whose `{` is at `index`, each member handed over as it is parsed (`parseObject`
    /// collects them). Duplicates: a scan of the names so far while there are few (a set, hashing
    /// every name and allocating twice, cost more than the rest of a small object's parsing, perf
    /// on `POST /todos`), a set once there are more.
    private mutating func streamObject(depth: Int, _ member: (_ name: UnsafeRawBufferPointer, _ value: JSONValue) -> Void) throws(Failure) {
        guard depth <= Self.maxDepth else { throw failure("nesting too deep") }
        index += 1
        var names: [MemberName] = []
        names.reserveCapacity(8)
        var nameSet: Set<String>?
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw failure("expected a member name") }
            let name = try parseMemberName()
            let duplicate: Bool
            if names.count < Self.scannedMemberNames {
                duplicate = names.contains { Self.sameName($0, name, in: bytes) }
            } else {
                if nameSet == nil { nameSet = Set(names.map { $0.withBytes(in: bytes) { String(decoding: $0, as: UTF8.self) } }) }
                duplicate = !nameSet!.insert(name.withBytes(in: bytes) { String(decoding: $0, as: UTF8.self) }).inserted
            }
            if duplicate {
                throw failure("duplicate member \"\(name.withBytes(in: bytes) { String(decoding: $0, as: UTF8.self) })\"")
            }
            names.append(name)
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw failure("expected ':'") }
            index += 1
            skipWhitespace()
            let value = try parseValue(depth: depth)
            name.withBytes(in: bytes) { member($0, value) }
            skipWhitespace()
            guard index < bytes.count else { throw failure("unexpected end of input") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "}") { index += 1; return }
            throw failure("expected ',' or '}'")
        }
    }

    /// Whether two names are the same string, as `parse` compares them (`String` equality:
    /// canonical equivalence, so `"K"` and `"\u212A"`, the Kelvin sign, are one name). Two names
    /// as written are ASCII, for which that is byte equality: compared in place (a closure per
    /// comparison was ~170 instructions a name, callgrind).
    private static func sameName(_ a: MemberName, _ b: MemberName, in bytes: UnsafeRawBufferPointer) -> Bool {
        if a.decoded == nil && b.decoded == nil {
            let count = a.end - a.start
            guard count == b.end - b.start else { return false }
            for k in 0..<count where bytes[a.start + k] != bytes[b.start + k] { return false }
            return true
        }
        return a.withBytes(in: bytes) { String(decoding: $0, as: UTF8.self) } == b.withBytes(in: bytes) { String(decoding: $0, as: UTF8.self) }
    }

    /// A member name as `parseString` reads it; printable ASCII without an escape stays where it is.
    private mutating func parseMemberName() throws(Failure) -> MemberName {
        let start = index + 1
        var end = start
        while end < bytes.count {
            let b = bytes[end]
            if b == UInt8(ascii: "\"") {
                index = end + 1
                return MemberName(start: start, end: end, decoded: nil)
            }
            if b == UInt8(ascii: "\\") || b < 0x20 || b >= 0x80 { break }
            end += 1
        }
        return MemberName(start: 0, end: 0, decoded: try parseString())
    }

    private func failure(_ reason: String) -> Failure {
        Failure(offset: index, reason: reason)
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private mutating func parseValue(depth: Int) throws(Failure) -> JSONValue {
        guard index < bytes.count else { throw failure("unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw failure("unexpected character")
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(Failure) {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw failure("invalid literal") }
        for i in 0..<count where bytes[index + i] != literal.utf8Start[i] { throw failure("invalid literal") }
        index += count
    }

    /// Up to this many members, a new name is compared with each earlier one.
    public static let scannedMemberNames = 16

    private mutating func parseObject(depth: Int) throws(Failure) -> JSONValue {
        // Room for a typical object at once (growing 1, 2, 4, 8 was three allocations).
        var members: [(key: String, value: JSONValue)] = []
        members.reserveCapacity(8)
        try streamObject(depth: depth) { name, value in members.append((String(decoding: name, as: UTF8.self), value)) }
        return .object(members)
    }

    private mutating func parseArray(depth: Int) throws(Failure) -> JSONValue {
        guard depth <= Self.maxDepth else { throw failure("nesting too deep") }
        index += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            guard index < bytes.count else { throw failure("unexpected end of input") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(elements) }
            throw failure("expected ',' or ']'")
        }
    }

    /// number = [ "-" ] int [ frac ] [ exp ]; int = "0" / digit1-9 *DIGIT (no leading zeros).
    private mutating func parseNumber() throws(Failure) -> String {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, isDigit(bytes[index]) else { throw failure("invalid number") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if index < bytes.count, isDigit(bytes[index]) { throw failure("leading zeros are not allowed") }
        } else {
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw failure("invalid number") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw failure("invalid number") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
    }

    private func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }

    private mutating func parseString() throws(Failure) -> String {
        index += 1  // opening quote
        let start = index
        // Fast path: no escapes.
        var ascii = true
        // Eight bytes at a time while none is a quote, a backslash or a control character (the
        // byte loop below was ~19 instructions a byte of a `POST`'s strings, callgrind).
        if let base = bytes.baseAddress {
            while index + 8 <= bytes.count {
                let word = base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                if Self.anyEqual(0x22, word) | Self.anyEqual(0x5C, word) | Self.anyBelow(0x20, word) != 0 { break }
                if word & Self.highs != 0 { ascii = false }
                index += 8
            }
        }
        while index < bytes.count {
            let b = bytes[index]
            if b == UInt8(ascii: "\"") {
                let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
                index += 1
                // ASCII needs no validation: `String(decoding:)` copies it as it is, where
                // `String(validating:)` went through generic code (metadata lookups at run time)
                // costing ~1,000 instructions a string, 6 % of a `POST` (callgrind).
                if ascii { return String(decoding: raw, as: UTF8.self) }
                guard let text = String(validating: raw, as: UTF8.self) else { throw Failure(offset: start, reason: "invalid UTF-8 in a string") }
                return text
            }
            if b == UInt8(ascii: "\\") { break }
            if b < 0x20 { throw failure("control character in a string") }
            if b >= 0x80 { ascii = false }
            index += 1
        }
        var decoded = Array(UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let b = bytes[index]
            switch b {
            case UInt8(ascii: "\""):
                index += 1
                guard let text = String(validating: decoded, as: UTF8.self) else { throw Failure(offset: start, reason: "invalid UTF-8 in a string") }
                return text
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { throw failure("unfinished escape") }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""): decoded.append(0x22)
                case UInt8(ascii: "\\"): decoded.append(0x5C)
                case UInt8(ascii: "/"): decoded.append(0x2F)
                case UInt8(ascii: "b"): decoded.append(0x08)
                case UInt8(ascii: "f"): decoded.append(0x0C)
                case UInt8(ascii: "n"): decoded.append(0x0A)
                case UInt8(ascii: "r"): decoded.append(0x0D)
                case UInt8(ascii: "t"): decoded.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try parseHex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        // A high surrogate must be followed by an escaped low surrogate (RFC 8259 §7).
                        guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                            throw failure("unpaired surrogate")
                        }
                        index += 2
                        let low = try parseHex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw failure("unpaired surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw failure("unpaired surrogate")
                    }
                    decoded.append(contentsOf: Array(String(Unicode.Scalar(scalar)!).utf8))
                default:
                    throw failure("invalid escape")
                }
            default:
                if b < 0x20 { throw failure("control character in a string") }
                decoded.append(b)
                index += 1
            }
        }
        throw failure("unterminated string")
    }

    // `Net.WordBytes`'s tests, written again here: this module depends on nothing.
    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highs: UInt64 = 0x8080_8080_8080_8080

    /// Nonzero when a byte of `word` equals `byte` (exact for "any": a borrow only runs upward
    /// from a byte that matched).
    @inline(__always) private static func anyEqual(_ byte: UInt8, _ word: UInt64) -> UInt64 {
        let x = word ^ (ones &* UInt64(byte))
        return (x &- ones) & ~x & highs
    }

    /// Nonzero when a byte of `word` is below `limit` (≤ 0x80).
    @inline(__always) private static func anyBelow(_ limit: UInt8, _ word: UInt64) -> UInt64 {
        (word &- ones &* UInt64(limit)) & ~word & highs
    }

    private mutating func parseHex4() throws(Failure) -> UInt32 {
        guard index + 4 <= bytes.count else { throw failure("invalid \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[index]
            let digit: UInt32
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(b - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(b - UInt8(ascii: "A") + 10)
            default: throw failure("invalid \\u escape")
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }
}
