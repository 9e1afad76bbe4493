import Net

/// Appends JSON to a byte buffer. Strings are escaped per RFC 8259 §7: quote, backslash and the
/// control characters; everything else is written as UTF-8.
public struct JSONWriter: Sendable {
    private var buffer: ByteWriter

    public init(capacity: Int = 256) {
        buffer = ByteWriter(capacity: capacity)
    }

    public var count: Int { buffer.count }
    /// A copy of the document. `take()` hands the storage over instead (no copy).
    public var bytes: [UInt8] { buffer.bytes }
    /// The document, leaving the writer empty (no copy).
    public mutating func take() -> [UInt8] { buffer.take() }

    public func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try buffer.withUnsafeBytes(body)
    }

    @inline(__always)
    mutating func append(_ source: UnsafeRawPointer?, _ length: Int) {
        buffer.append(source, count: length)
    }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        buffer.append(byte)
    }

    @inline(__always)
    public mutating func raw(_ text: StaticString) {
        buffer.append(text)
    }

    public mutating func string(_ text: String) {
        append(UInt8(ascii: "\""))
        escaped(text)
        append(UInt8(ascii: "\""))
    }

    /// `text` escaped, without the quotes: for a string written in pieces.
    public mutating func escaped(_ text: String) {
        text.withBorrowedUTF8 { appendEscaped($0) }
    }

    /// A slice of a string (a request's path), escaped without making a string of it.
    public mutating func escaped(_ text: Substring) {
        var text = text
        text.withUTF8 { appendEscaped($0) }
    }

    /// Runs without anything to escape are copied whole; each byte that needs it is escaped.
    private mutating func appendEscaped(_ utf8: UnsafeBufferPointer<UInt8>) {
        var runStart = 0
        var i = Self.firstToEscape(utf8, from: 0)
        while i < utf8.count {
            append(utf8.baseAddress.map { $0 + runStart }, i - runStart)
            appendEscape(utf8[i])
            runStart = i + 1
            i = Self.firstToEscape(utf8, from: runStart)
        }
        append(utf8.baseAddress.map { $0 + runStart }, utf8.count - runStart)
    }

    /// The escape of one byte that `firstToEscape` stopped at (RFC 8259 §7).
    private mutating func appendEscape(_ b: UInt8) {
        switch b {
        case UInt8(ascii: "\""): raw("\\\"")
        case UInt8(ascii: "\\"): raw("\\\\")
        case 0x0A: raw("\\n")
        case 0x0D: raw("\\r")
        case 0x09: raw("\\t")
        default:
            raw("\\u00")
            append(Self.hex[Int(b >> 4)])
            append(Self.hex[Int(b & 0xF)])
        }
    }

    /// The index of the first byte from `start` that JSON must escape (a control character, `"`
    /// or `\\`), or `bytes.count`. Eight bytes at a time (`WordBytes`): a word has such a byte when
    /// one of its bytes is below 0x20 or equal to 0x22 or 0x5C. Scanning byte by byte was most of
    /// the cost of an access line and of a todo's JSON (callgrind: 8 instructions a byte).
    @inline(__always)
    static func firstToEscape(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        var i = start
        let count = bytes.count
        if let base = bytes.baseAddress {
            let raw = UnsafeRawPointer(base)
            while i + 8 <= count {
                let word = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                if WordBytes.anyBelow(0x20, in: word) | WordBytes.anyEqual(0x22, in: word) | WordBytes.anyEqual(0x5C, in: word) != 0 { break }
                i += 8
            }
        }
        while i < count {
            let b = bytes[i]
            if b < 0x20 || b == 0x22 || b == 0x5C { return i }
            i += 1
        }
        return count
    }

    /// Bytes appended as they are: the caller vouches that they are valid JSON in place (digits,
    /// a uuid's hex text).
    public mutating func raw(bytes text: UnsafeRawBufferPointer) {
        append(text.baseAddress, text.count)
    }

    /// UTF-8 text given as bytes (a database value), as a JSON string. ASCII text is escaped in
    /// place; text with other bytes goes through `String` first, so invalid UTF-8 is repaired
    /// (U+FFFD) rather than copied into the document.
    public mutating func string(utf8 text: UnsafeRawBufferPointer) {
        let utf8 = text.assumingMemoryBound(to: UInt8.self)
        guard Self.isASCII(utf8) else {
            string(String(decoding: utf8, as: UTF8.self))
            return
        }
        append(UInt8(ascii: "\""))
        appendEscaped(utf8)
        append(UInt8(ascii: "\""))
    }

    static func isASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        if let base = bytes.baseAddress {
            let raw = UnsafeRawPointer(base)
            while i + 8 <= bytes.count {
                if WordBytes.anyNonASCII(in: raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) != 0 { return false }
                i += 8
            }
        }
        while i < bytes.count {
            if bytes[i] >= 0x80 { return false }
            i += 1
        }
        return true
    }

    /// Empties the buffer, keeping its storage (a writer reused line after line).
    public mutating func reset() {
        buffer.reset()
    }

    public mutating func optionalString(_ text: String?) {
        if let text { string(text) } else { raw("null") }
    }

    public mutating func bool(_ value: Bool) {
        if value { raw("true") } else { raw("false") }
    }

    public mutating func integer(_ value: Int) {
        buffer.appendDecimal(value)
    }

    static let hex: [UInt8] = Array("0123456789abcdef".utf8)
}
