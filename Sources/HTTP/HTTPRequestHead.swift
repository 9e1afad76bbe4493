import Glibc
// scripts/fuzz compiles the parser's files and Net's ASCIIText.swift as one module.
#if canImport(Net)
import Net
#endif

/// A parsed request head. It owns a copy of the head's bytes; header fields are offsets into them,
/// kept in the same allocation (`HTTPFields`), so parsing allocates one array per request however
/// many fields there are. Immutable, and a
/// class so that the request, the exchange record and a pending response share it with one
/// retain (as a struct, each copy retained its six references: 2 % of a request in profiles).
public final class HTTPRequestHead: Sendable {
    public let method: HTTPMethod
    public let version: HTTPVersion
    /// The request target as sent (origin-form `/path?query`, absolute-form or `*`).
    public let target: String
    public let fields: HTTPFields

    /// Body framing, already validated by the parser.
    public let contentLength: Int?
    public let isChunked: Bool
    /// Whether the client wants the connection kept open after this exchange (RFC 9112 §9.3).
    public let keepAlive: Bool
    /// `Expect: 100-continue` on an HTTP/1.1 request (ignored for HTTP/1.0, RFC 9110 §10.1.1).
    public let expectsContinue: Bool

    public var hasBody: Bool { isChunked || (contentLength ?? 0) > 0 }

    /// The path of the target without the query: `/todos/1?x=y` → `/todos/1`. For absolute-form
    /// (`http://host/p`) the path part; for `*` itself. Split once here: the router, the request
    /// filter and the access log all read it (searching the target each time showed in profiles).
    public let path: Substring
    /// The query string without `?`, or nil.
    public let query: Substring?

    /// `pathBounds`: where the path lies in the target and where its `?` is, as
    /// `pathBounds(of:)` finds them on the target's bytes (the parser has them in hand).
    init(method: HTTPMethod, version: HTTPVersion, target: String, pathBounds: PathBounds, fields: HTTPFields,
         contentLength: Int?, isChunked: Bool, keepAlive: Bool, expectsContinue: Bool) {
        self.method = method
        self.version = version
        self.target = target
        self.fields = fields
        self.contentLength = contentLength
        self.isChunked = isChunked
        self.keepAlive = keepAlive
        self.expectsContinue = expectsContinue
        (path, query) = Self.split(target, pathBounds)
    }

    convenience init(method: HTTPMethod, version: HTTPVersion, target: String, fields: HTTPFields, contentLength: Int?,
                     isChunked: Bool, keepAlive: Bool, expectsContinue: Bool) {
        let bounds = target.withBorrowedUTF8 { Self.pathBounds(of: UnsafeRawBufferPointer($0)) }
        self.init(method: method, version: version, target: target, pathBounds: bounds, fields: fields,
                  contentLength: contentLength, isChunked: isChunked, keepAlive: keepAlive, expectsContinue: expectsContinue)
    }

    static func split(_ target: String) -> (path: Substring, query: Substring?) {
        split(target, target.withBorrowedUTF8 { pathBounds(of: UnsafeRawBufferPointer($0)) })
    }

    /// Byte offsets in a request target: the path is `start..<end` (start -1: no path, which
    /// reads as `/`), the query follows the `?` at `question`.
    struct PathBounds {
        var start: Int
        var end: Int
        var question: Int?
    }

    static func pathBounds(of bytes: UnsafeRawBufferPointer) -> PathBounds {
        let question = bytes.baseAddress.flatMap { base in
            memchr(base, Int32(UInt8(ascii: "?")), bytes.count).map { base.distance(to: UnsafeRawPointer($0)) }
        }
        let end = question ?? bytes.count
        if bytes.first == UInt8(ascii: "/") || bytes.first == UInt8(ascii: "*") { return PathBounds(start: 0, end: end, question: question) }
        // absolute-form: skip "scheme://authority"
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else { return PathBounds(start: -1, end: -1, question: question) }
        var start = min(colon + 3, bytes.count)
        while start < bytes.count && bytes[start] != UInt8(ascii: "/") && bytes[start] != UInt8(ascii: "?") { start += 1 }
        if start == bytes.count || bytes[start] == UInt8(ascii: "?") { return PathBounds(start: -1, end: -1, question: question) }
        // The scan stopped at a `/` before any `?`, so the first `?` still ends the path.
        return PathBounds(start: start, end: end, question: question)
    }

    /// The path and query as substrings of the target. Split once here: the router, the request
    /// filter and the access log all read them (searching the target each time showed in
    /// profiles). A target that is all path (no query, origin-form: most requests) is taken whole,
    /// without the index validation of a ranged subscript (~170 instructions, callgrind).
    static func split(_ target: String, _ bounds: PathBounds) -> (path: Substring, query: Substring?) {
        let utf8 = target.utf8
        let query = bounds.question.map { target[utf8.index(utf8.startIndex, offsetBy: $0 + 1)...] }
        guard bounds.start >= 0 else { return ("/", query) }
        if bounds.start == 0 && bounds.end == utf8.count { return (Substring(target), query) }
        return (target[utf8.index(utf8.startIndex, offsetBy: bounds.start)..<utf8.index(utf8.startIndex, offsetBy: bounds.end)], query)
    }
}

/// Header fields in arrival order, looked up case-insensitively (RFC 9110 §5.1).
public struct HTTPFields: Sendable, Sequence {
    struct Entry: Sendable {
        var nameStart: UInt32
        var nameEnd: UInt32
        var valueStart: UInt32
        var valueEnd: UInt32
    }

    /// The head's bytes (`0..<byteCount`), then each field line's `Entry` after them: one
    /// allocation a request, where a second array of entries was one more allocation, its growth
    /// and its release (~350 instructions a `GET /health`, callgrind).
    let storage: [UInt8]
    /// How many of `storage`'s bytes are the head's.
    let byteCount: Int
    /// How many field lines.
    public let count: Int
    /// Where the names looked up on every request are (`KnownField`), found once here; nil for a
    /// head of more field lines than a slot can number (the lookups then compare names).
    let known: KnownFieldSlots?

    static var entrySize: Int { MemoryLayout<Entry>.stride }

    /// `storage` as `HTTPHeadParser` made it: the head, then `count` entries.
    init(storage: [UInt8], byteCount: Int, count: Int, known: KnownFieldSlots) {
        self.storage = storage
        self.byteCount = byteCount
        self.count = count
        self.known = count <= KnownFieldSlots.maxEntries ? known : nil
    }

    /// For tests: fields over `bytes`, located by `entries`.
    init(bytes: [UInt8], entries: [Entry], known: KnownFieldSlots) {
        var storage = bytes
        entries.withUnsafeBytes { storage.append(contentsOf: $0) }
        self.init(storage: storage, byteCount: bytes.count, count: entries.count, known: known)
    }

    @inline(__always)
    func entry(at index: Int) -> Entry {
        storage.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: byteCount &+ index &* Self.entrySize, as: Entry.self) }
    }


    /// The first value of a known field, or nil: one slot read, where a lookup by name compared
    /// every field line's name (~200 instructions a lookup, six a `POST`, callgrind).
    public subscript(field: KnownField) -> String? {
        entry(field).map(value)
    }

    /// The first value of a known field as the head's bytes (no string made), or nil.
    public func rawValue(_ field: KnownField) -> ArraySlice<UInt8>? {
        guard let entry = entry(field) else { return nil }
        return storage[Int(entry.valueStart)..<Int(entry.valueEnd)]
    }

    private func entry(_ field: KnownField) -> Entry? {
        guard let known else { return field.name.withUTF8Buffer { first(named: $0) } }
        return known[field].map { entry(at: $0) }
    }

    /// The first value of `name`, or nil.
    public subscript(name: String) -> String? {
        guard let entry = name.withBorrowedUTF8({ first(named: $0) }) else { return nil }
        return value(entry)
    }

    /// The first value of `name` as the head's bytes (no string made), or nil.
    public func rawValue(_ name: StaticString) -> ArraySlice<UInt8>? {
        guard let entry = name.withUTF8Buffer({ first(named: $0) }) else { return nil }
        return storage[Int(entry.valueStart)..<Int(entry.valueEnd)]
    }

    /// A loop, not `entries.first { … }`: the closure form cost ~400 instructions a lookup
    /// (callgrind; `RequestID` looks up `X-Request-ID` on every request).
    private func first(named wanted: UnsafeBufferPointer<UInt8>) -> Entry? {
        for index in 0..<count {
            let entry = self.entry(at: index)
            if Self.nameMatches(storage, entry, wanted) { return entry }
        }
        return nil
    }

    /// Every value of `name`, in order.
    public func values(_ name: String) -> [String] {
        return name.withBorrowedUTF8 { wanted in
            (0..<count).map(entry(at:)).filter { Self.nameMatches(storage, $0, wanted) }.map(value)
        }
    }

    public func makeIterator() -> AnyIterator<(name: String, value: String)> {
        var index = 0
        return AnyIterator {
            guard index < count else { return nil }
            let entry = self.entry(at: index)
            index += 1
            return (String(decoding: storage[Int(entry.nameStart)..<Int(entry.nameEnd)], as: UTF8.self), value(entry))
        }
    }

    /// Every field as slices of the head's bytes, without building strings (for request filters
    /// that inspect every header).
    public func forEachRaw(_ body: (_ name: ArraySlice<UInt8>, _ value: ArraySlice<UInt8>) -> Void) {
        for index in 0..<count {
            let entry = self.entry(at: index)
            body(storage[Int(entry.nameStart)..<Int(entry.nameEnd)], storage[Int(entry.valueStart)..<Int(entry.valueEnd)])
        }
    }

    private func value(_ entry: Entry) -> String {
        String(decoding: storage[Int(entry.valueStart)..<Int(entry.valueEnd)], as: UTF8.self)
    }

    static func nameMatches(_ bytes: [UInt8], _ entry: Entry, _ wanted: UnsafeBufferPointer<UInt8>) -> Bool {
        let length = Int(entry.nameEnd - entry.nameStart)
        guard length == wanted.count else { return false }
        var i = 0
        let start = Int(entry.nameStart)
        while i < length {
            if ASCII.lower(bytes[start + i]) != ASCII.lower(wanted[i]) { return false }
            i += 1
        }
        return true
    }
}

/// The header fields the service reads on (nearly) every request, by the HTTP layer (request
/// ids, the access line), the request filter and the routes.
public enum KnownField: Int, CaseIterable, Sendable {
    case contentType, userAgent, requestID, traceID, ifMatch, ifNoneMatch, idempotencyKey, authorization, oidcData
    case forwardedFor, forwardedProto

    /// The lower-case name (RFC 9110 §5.1: names are case-insensitive).
    public var name: StaticString {
        switch self {
        case .contentType: "content-type"
        case .userAgent: "user-agent"
        case .requestID: "x-request-id"
        case .traceID: "x-amzn-trace-id"
        case .ifMatch: "if-match"
        case .ifNoneMatch: "if-none-match"
        case .idempotencyKey: "idempotency-key"
        case .authorization: "authorization"
        case .oidcData: "x-amzn-oidc-data"
        case .forwardedFor: "x-forwarded-for"
        case .forwardedProto: "x-forwarded-proto"
        }
    }

    /// The field a name in any case is, if it is one of these: by its length, then one or two
    /// comparisons. `name` must be a token (RFC 9110 §5.6.2), as the parser has checked.
    init?(name: UnsafeRawBufferPointer) {
        switch name.count {
        case 8: if Self.matches(name, .ifMatch) { self = .ifMatch; return }
        case 10: if Self.matches(name, .userAgent) { self = .userAgent; return }
        case 12:
            if Self.matches(name, .contentType) { self = .contentType; return }
            if Self.matches(name, .requestID) { self = .requestID; return }
        case 13:
            if Self.matches(name, .ifNoneMatch) { self = .ifNoneMatch; return }
            if Self.matches(name, .authorization) { self = .authorization; return }
        case 15:
            if Self.matches(name, .traceID) { self = .traceID; return }
            if Self.matches(name, .idempotencyKey) { self = .idempotencyKey; return }
            if Self.matches(name, .forwardedFor) { self = .forwardedFor; return }
        case 16: if Self.matches(name, .oidcData) { self = .oidcData; return }
        case 17: if Self.matches(name, .forwardedProto) { self = .forwardedProto; return }
        default: break
        }
        return nil
    }

    /// Every known name is 8 to 17 bytes of lower-case letters and `-`, so two overlapping
    /// 8-byte words cover it, with the middle byte a 17-byte name leaves between them. OR 0x20
    /// lower-cases a letter and leaves `-` as it is; a field name is a token (validated before
    /// this), and no other token byte ORs into a letter or `-`.
    /// Byte by byte, the comparison was ~170 instructions a `User-Agent` (callgrind).
    @inline(__always)
    private static func matches(_ name: UnsafeRawBufferPointer, _ field: KnownField) -> Bool {
        let count = name.count  // the caller chose `field` by this length
        let expected = UnsafeRawPointer(field.name.utf8Start)
        let mask: UInt64 = 0x2020_2020_2020_2020
        return name.loadUnaligned(as: UInt64.self) | mask == expected.loadUnaligned(as: UInt64.self)
            && name.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self) | mask
                == expected.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)
            && (count <= 16 || name[8] | 0x20 == expected.load(fromByteOffset: 8, as: UInt8.self))
    }
}

/// For each `KnownField`, the index of its first field line plus one (0: absent), a byte each in
/// two words: no allocation.
struct KnownFieldSlots: Sendable {
    /// The most field lines whose indices fit a slot (`HTTPLimits.maxHeaderFields` is 100 unless
    /// raised).
    static let maxEntries = 254
    private var low: UInt64 = 0
    private var high: UInt64 = 0

    subscript(field: KnownField) -> Int? {
        let slot = field.rawValue
        let word = slot < 8 ? low : high
        let stored = Int((word >> (UInt64(slot & 7) * 8)) & 0xFF)
        return stored == 0 ? nil : stored - 1
    }

    /// Records `index` as `field`'s line unless an earlier one was; indices past `maxEntries`
    /// are not recorded (the fields then drop the slots altogether).
    @inline(__always)
    mutating func noteFirst(_ field: KnownField, at index: Int) {
        guard index < Self.maxEntries, self[field] == nil else { return }
        let slot = field.rawValue
        let bits = UInt64(index + 1) << (UInt64(slot & 7) * 8)
        if slot < 8 { low |= bits } else { high |= bits }
    }
}

/// Byte classes of RFC 9110 §5.6.2 and §5.5.
enum ASCII {
    static let tab: UInt8 = 9
    static let lf: UInt8 = 10
    static let cr: UInt8 = 13
    static let space: UInt8 = 32
    static let colon: UInt8 = 58

    @inline(__always) static func lower(_ b: UInt8) -> UInt8 { b &- 65 < 26 ? b | 0x20 : b }

    /// tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA,
    /// as a bitmap of the 128 ASCII bytes in two constants (no table to load or bounds-check:
    /// a `static let` array cost a lazy-initialisation check and a bounds check per byte).
    /// `ByteClassTests` compares it with the grammar's list.
    static let tokenBitsLow: UInt64 = 0x03FF_6CFA_0000_0000   // 0x00–0x3F: ! # $ % & ' * + - . 0–9
    static let tokenBitsHigh: UInt64 = 0x57FF_FFFF_C7FF_FFFE  // 0x40–0x7F: A–Z ^ _ ` a–z | ~

    @inline(__always) static func isToken(_ b: UInt8) -> Bool {
        b < 0x40 ? (tokenBitsLow >> UInt64(b)) & 1 != 0 : b < 0x80 && (tokenBitsHigh >> UInt64(b &- 0x40)) & 1 != 0
    }

    /// Whether every byte of `bytes` is a field-value byte (`isFieldValueByte`): eight at a time
    /// (`WordBytes`: no byte below 0x20 and none equal to 0x7F; obs-text passes), a tab sends the word to the
    /// byte-by-byte check.
    static func areFieldValueBytes(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        if let base = bytes.baseAddress {
            while i + 8 <= bytes.count {
                let word = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                if WordBytes.anyBelow(0x20, in: word) | WordBytes.anyEqual(0x7F, in: word) != 0 { break }
                i += 8
            }
        }
        while i < bytes.count {
            if !isFieldValueByte(bytes[i]) { return false }
            i += 1
        }
        return true
    }

    /// field-vchar / SP / HTAB: visible ASCII, obs-text (0x80–0xFF), space and tab. CTLs, DEL, NUL are not.
    @inline(__always) static func isFieldValueByte(_ b: UInt8) -> Bool {
        (b >= 0x20 && b != 0x7F) || b == tab
    }
}
