import Glibc
import JSON
import Net
import Observability
/// The writable fields of a request body, validated. `nil` for a field means "not given".
struct TodoInput: Sendable {
    enum Mode { case create, replace, patch }

    var title: String?
    /// Given (as a value or as null) or not.
    var description: String??
    var priority: String??
    var completed: Bool??
    var completedAt: Int64??

    struct FieldError: Sendable, Equatable {
        let field: String
        let message: String
    }

    /// Every problem found in one body.
    struct Invalid: Error, Sendable {
        let errors: [FieldError]
    }

    static let maxTitle = 200
    static let maxDescription = 2000
    static let maxPriority = 32

    /// Validates a body's JSON text, read member by member (`JSONParser.forEachMember`: no
    /// document is built). Errors name each field; all are reported at once. Malformed JSON
    /// anywhere is thrown instead, whatever field errors came before it.
    static func parse(json bytes: [UInt8], mode: Mode) throws(JSONParser.Failure) -> Result<TodoInput, Invalid> {
        var reader = Reader(mode: mode)
        if let other = try JSONParser.forEachMember(of: bytes, { name, value in reader.take(name, value) }) {
            return .failure(Invalid(errors: [FieldError(field: "", message: "the body must be a JSON object, got \(other.typeName)")]))
        }
        return reader.finish()
    }

    /// The fields of one body, member by member, and every problem found.
    struct Reader {
        let mode: Mode
        var input = TodoInput()
        var errors: [FieldError] = []

        init(mode: Mode) {
            self.mode = mode
        }

        private mutating func typeError(_ field: String, _ expected: String, _ value: JSONValue) {
            errors.append(FieldError(field: field, message: "must be \(expected), got \(value.typeName)"))
        }

        /// One member. Names are told apart by their bytes (a `String` per name and string
        /// comparisons showed in profiles of `POST`).
        mutating func take(_ name: UnsafeRawBufferPointer, _ value: JSONValue) {
            switch Field(name) {
            case .title:
                switch value {
                case .string(let text):
                    let trimmed = text.trimmingWhitespace
                    if let problem = checkText(trimmed, max: maxTitle, allowEmpty: false) {
                        errors.append(FieldError(field: "title", message: problem))
                    } else {
                        input.title = trimmed
                    }
                case .null where mode == .patch:
                    errors.append(FieldError(field: "title", message: "is required and cannot be removed"))
                default:
                    typeError("title", "a string", value)
                }
            case .description:
                switch value {
                case .string(let text):
                    if let problem = checkText(text, max: maxDescription, allowEmpty: true) {
                        errors.append(FieldError(field: "description", message: problem))
                    } else {
                        input.description = .some(text)
                    }
                case .null: input.description = .some(nil)
                default: typeError("description", "a string or null", value)
                }
            case .priority:
                switch value {
                case .string(let text):
                    if let problem = checkText(text, max: maxPriority, allowEmpty: true) {
                        errors.append(FieldError(field: "priority", message: problem))
                    } else {
                        input.priority = .some(text)
                    }
                case .null: input.priority = .some(nil)  // back to the default
                default: typeError("priority", "a string", value)
                }
            case .completed:
                switch value {
                case .bool(let flag): input.completed = .some(flag)
                case .null: input.completed = .some(nil)  // back to the default (false)
                default: typeError("completed", "a boolean", value)
                }
            case .completedAt:
                switch value {
                case .null: input.completedAt = .some(nil)
                case .number(let text), .string(let text):
                    if let millis = parseTime(text, isNumber: { if case .number = value { true } else { false } }()) {
                        input.completedAt = .some(millis)
                    } else {
                        errors.append(FieldError(field: "completedAt",
                                                 message: "must be an RFC 3339 timestamp or epoch milliseconds between years 1 and 9999"))
                    }
                default: typeError("completedAt", "an RFC 3339 string, epoch milliseconds or null", value)
                }
            case .readOnly:
                break
            case .unknown:
                errors.append(FieldError(field: String(decoding: name, as: UTF8.self), message: "is not a field of a todo"))
            }
        }

        func finish() -> Result<TodoInput, Invalid> {
            var errors = errors
            if mode != .patch && input.title == nil && !errors.contains(where: { $0.field == "title" }) {
                errors.append(FieldError(field: "title", message: "is required"))
            }
            return errors.isEmpty ? .success(input) : .failure(Invalid(errors: errors))
        }
    }

    /// The members a body may have, by name (exact bytes: JSON names are case-sensitive).
    /// `readOnly`: fields the server manages, accepted in a body (clients PUT back what they GET)
    /// and ignored.
    enum Field {
        case title, description, priority, completed, completedAt, readOnly, unknown

        init(_ name: UnsafeRawBufferPointer) {
            func named(_ literal: StaticString) -> Bool {
                name.count == literal.utf8CodeUnitCount && memcmp(name.baseAddress!, literal.utf8Start, name.count) == 0
            }
            switch name.count {
            case 5 where named("title"): self = .title
            case 11 where named("description"): self = .description
            case 11 where named("completedAt"): self = .completedAt
            case 8 where named("priority"): self = .priority
            case 9 where named("completed"): self = .completed
            case 9 where named("createdAt"), 9 where named("updatedAt"), 2 where named("id"): self = .readOnly
            default: self = .unknown
            }
        }
    }

    /// Length in Unicode code points, as PostgreSQL's char_length counts. NUL is refused: text
    /// columns cannot store it.
    /// Counted in one pass over the contiguous UTF-8 bytes (a String is valid UTF-8: every byte
    /// that is not a continuation byte starts a code point); decoding the scalars twice, then
    /// iterating the UTF-8 view (~40 instructions a byte), showed in profiles of `POST`.
    static func checkText(_ text: String, max: Int, allowEmpty: Bool) -> String? {
        let (length, hasNUL) = text.withBorrowedUTF8 { bytes -> (Int, Bool) in
            var length = 0
            var hasNUL = false
            // ASCII words (most text): eight bytes counted at once, NUL found by the zero-byte
            // test (byte by byte was ~15 instructions a byte, callgrind).
            var i = 0
            if let base = bytes.baseAddress {
                let raw = UnsafeRawPointer(base)
                while i + 8 <= bytes.count {
                    let word = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                    if WordBytes.anyNonASCII(in: word) != 0 { break }
                    if WordBytes.anyEqual(0, in: word) != 0 { hasNUL = true }
                    length += 8
                    i += 8
                }
            }
            for b in UnsafeBufferPointer(rebasing: bytes[i...]) {
                if b & 0xC0 != 0x80 { length += 1 }
                if b == 0 { hasNUL = true }
            }
            return (length, hasNUL)
        }
        if !allowEmpty && length == 0 { return "must not be empty" }
        if length > max { return "must be at most \(max) characters, got \(length)" }
        if hasNUL { return "must not contain NUL characters" }
        return nil
    }

    /// 0001-01-01 .. 9999-12-31 in Unix milliseconds.
    static let timeRange: ClosedRange<Int64> = -62_135_596_800_000...253_402_300_799_999

    /// Epoch milliseconds (a JSON integer or a string of digits) or an RFC 3339 string.
    static func parseTime(_ text: String, isNumber: Bool) -> Int64? {
        let digits = text.hasPrefix("-") ? text.dropFirst() : Substring(text)
        if !digits.isEmpty, digits.count <= 16, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int64(text) {
            return timeRange.contains(value) ? value : nil
        }
        if isNumber { return nil }  // a fraction or exponent is not a millisecond count
        return Timestamp.parseRFC3339(text).flatMap { timeRange.contains($0) ? $0 : nil }
    }
}

extension String {
    /// Without leading and trailing white space (Unicode White_Space).
    var trimmingWhitespace: String {
        // Printable ASCII at both ends: nothing to trim, and the string itself is returned (no
        // copy; looking up each scalar's White_Space property showed in profiles of `POST`).
        if let first = utf8.first, let last = utf8.last, first > 0x20 && first < 0x7F, last > 0x20 && last < 0x7F { return self }
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })!
        return String(scalars[first...last])
    }
}
