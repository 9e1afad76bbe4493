import Net

/// Appends JSON to a byte buffer. Strings are escaped per RFC 8259 §7: quote, backslash and the
/// control characters; everything else is written as UTF-8.
public struct JSONWriter: Sendable {
    public var bytes: [UInt8] = []

    public init(capacity: Int = 256) {
        bytes.reserveCapacity(capacity)
    }

    @inline(__always)
    public mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    public mutating func string(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        escaped(text)
        bytes.append(UInt8(ascii: "\""))
    }

    /// `text` escaped, without the quotes: for a string written in pieces.
    public mutating func escaped(_ text: String) {
        var text = text
        text.withUTF8 { utf8 in
            var runStart = 0
            for (i, b) in utf8.enumerated() where b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") {
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<i]))
                switch b {
                case UInt8(ascii: "\""): raw("\\\"")
                case UInt8(ascii: "\\"): raw("\\\\")
                case 0x0A: raw("\\n")
                case 0x0D: raw("\\r")
                case 0x09: raw("\\t")
                default:
                    raw("\\u00")
                    bytes.append(Self.hex[Int(b >> 4)])
                    bytes.append(Self.hex[Int(b & 0xF)])
                }
                runStart = i + 1
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...]))
        }
    }

    /// Printable ASCII (0x20–0x7E, checked by the caller) as a JSON string: only `"` and `\\`
    /// need escaping.
    public mutating func string<Bytes: Collection<UInt8>>(asciiBytes text: Bytes) {
        bytes.append(UInt8(ascii: "\""))
        for b in text {
            if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") { bytes.append(UInt8(ascii: "\\")) }
            bytes.append(b)
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// Empties the buffer, keeping its storage (a writer reused line after line).
    public mutating func reset() {
        bytes.removeAll(keepingCapacity: true)
    }

    public mutating func optionalString(_ text: String?) {
        if let text { string(text) } else { raw("null") }
    }

    public mutating func bool(_ value: Bool) {
        if value { raw("true") } else { raw("false") }
    }

    public mutating func integer(_ value: Int) {
        ASCIIDigits.appendDecimal(value, to: &bytes)
    }

    static let hex: [UInt8] = Array("0123456789abcdef".utf8)
}
