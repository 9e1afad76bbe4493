/// Digits and whitespace as bytes: the one copy of helpers every layer needs (the HTTP parser's
/// chunk sizes and percent-decoding, the request filter's decoders, response encoding, ids).
public enum ASCIIDigits {
    /// The value of one hexadecimal digit, either case; nil for any other byte.
    @inline(__always)
    public static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte &- UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte &- UInt8(ascii: "a") &+ 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte &- UInt8(ascii: "A") &+ 10
        default: nil
        }
    }

    /// Appends `value` in decimal without building a String (on every response's
    /// Content-Length). Negative values get a minus sign.
    public static func appendDecimal(_ value: Int, to output: inout [UInt8]) {
        if value >= 0 && value < 10 {
            output.append(UInt8(ascii: "0") &+ UInt8(value))
            return
        }
        // One append per digit: a status or a byte count has 3 or 4, and appending the slice
        // went through the generic sequence path (~250 instructions a number, callgrind).
        withDecimal(value) { digits in for digit in digits { output.append(digit) } }
    }

    /// `value` in decimal (a minus sign first when negative), on the stack.
    @inlinable @inline(__always)
    public static func withDecimal<Result>(_ value: Int, _ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: Int.min has 19 digits and a sign
        var start = 24
        withUnsafeMutableBytes(of: &digits) { buffer in
            var rest = value.magnitude
            repeat {
                start -= 1
                buffer[start] = UInt8(ascii: "0") &+ UInt8(rest % 10)
                rest /= 10
            } while rest > 0
            if value < 0 {
                start -= 1
                buffer[start] = UInt8(ascii: "-")
            }
        }
        return withUnsafeBytes(of: &digits) { body(UnsafeRawBufferPointer(rebasing: $0[start..<24])) }
    }

    /// `value` as `width` lowercase hexadecimal digits, zero-padded (ids, digests, `\uXXXX`).
    public static func hex(_ value: UInt64, width: Int) -> String {
        let digits = String(value, radix: 16)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces, tabs, CRs and LFs (configuration values, lists in
    /// environment variables, files from /proc and /sys).
    public var trimmingWhitespace: String {
        let isWhitespace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }
        guard let first = firstIndex(where: { !isWhitespace($0) }), let last = lastIndex(where: { !isWhitespace($0) }) else { return "" }
        return String(self[first...last])
    }
}

/// Eight bytes at a time (SWAR): tests on a 64-bit word that say whether any of its bytes has a
/// property, for scans that then find the exact byte one at a time (JSON escaping, header field
/// values, ASCII checks). The tests are Hacker's Delight §6-1's "has a zero byte" and "has a
/// byte less than n"; a borrow can only mark bytes after a real match, so "any" is exact.
public enum WordBytes {
    public static let ones: UInt64 = 0x0101_0101_0101_0101
    public static let highs: UInt64 = 0x8080_8080_8080_8080

    /// Nonzero when a byte of `word` is below `limit` (≤ 0x80).
    @inlinable @inline(__always)
    public static func anyBelow(_ limit: UInt8, in word: UInt64) -> UInt64 {
        (word &- ones &* UInt64(limit)) & ~word & highs
    }

    /// Nonzero when a byte of `word` equals `byte`.
    @inlinable @inline(__always)
    public static func anyEqual(_ byte: UInt8, in word: UInt64) -> UInt64 {
        let x = word ^ (ones &* UInt64(byte))
        return (x &- ones) & ~x & highs
    }

    /// Nonzero when a byte of `word` is 0x80 or above (not ASCII).
    @inlinable @inline(__always)
    public static func anyNonASCII(in word: UInt64) -> UInt64 { word & highs }
}
