import Net
/// The text transformations AWS WAF applies before matching (URL_DECODE, HTML_ENTITY_DECODE,
/// LOWERCASE, COMPRESS_WHITE_SPACE, REMOVE_NULLS, NORMALIZE_PATH), on bytes. Inputs are bounded by
/// the size rules, and every transformation is a single pass, so the cost is linear.
enum TextTransform {
    /// Whether `text` contains the lowercase ASCII `needle`, ignoring ASCII case (media types).
    static func containsCaseInsensitive<Bytes: Collection<UInt8>>(_ text: Bytes, _ needle: StaticString) -> Bool {
        needle.withUTF8Buffer { pattern in
            var start = text.startIndex
            while true {
                var i = start, k = 0
                while k < pattern.count, i < text.endIndex {
                    let b = text[i]
                    if (b &- 65 < 26 ? b | 0x20 : b) != pattern[k] { break }
                    i = text.index(after: i)
                    k += 1
                }
                if k == pattern.count { return true }
                guard start < text.endIndex else { return false }
                start = text.index(after: start)
            }
        }
    }

    /// `%XX`, IIS's `%uXXXX` and, with `plusIsSpace`, `+`. Malformed escapes stay as they are.
    static func urlDecode(_ input: ArraySlice<UInt8>, plusIsSpace: Bool) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(input.count)
        var i = input.startIndex
        let end = input.endIndex
        while i < end {
            let b = input[i]
            if b == 0x25 {  // %
                if i + 2 < end, let h = ASCIIDigits.hexValue(input[i + 1]), let l = ASCIIDigits.hexValue(input[i + 2]) {
                    out.append(h << 4 | l)
                    i += 3
                    continue
                }
                if i + 5 < end, input[i + 1] | 0x20 == 0x75,
                   let a = ASCIIDigits.hexValue(input[i + 2]), let b2 = ASCIIDigits.hexValue(input[i + 3]), let c = ASCIIDigits.hexValue(input[i + 4]), let d = ASCIIDigits.hexValue(input[i + 5]) {
                    appendUTF8(UInt32(a) << 12 | UInt32(b2) << 8 | UInt32(c) << 4 | UInt32(d), to: &out)
                    i += 6
                    continue
                }
            } else if b == 0x2B && plusIsSpace {
                out.append(0x20)
                i += 1
                continue
            }
            out.append(b)
            i += 1
        }
        return out
    }

    /// URL-decodes until nothing changes, at most `rounds` times (double encoding: `%252e`).
    static func urlDecodeRepeatedly(_ input: ArraySlice<UInt8>, plusIsSpace: Bool, rounds: Int = 3) -> [UInt8] {
        var current = Array(input)
        for round in 0..<rounds {
            guard current.contains(0x25) || (plusIsSpace && round == 0 && current.contains(0x2B)) else { break }
            let next = urlDecode(current[...], plusIsSpace: plusIsSpace && round == 0)
            if next == current { break }
            current = next
        }
        return current
    }

    /// The form used for matching: HTML entities decoded, NULs removed, overlong UTF-8 for `.`,
    /// `/`, `\` folded (`%c0%ae`, `%c0%af`, `%c1%9c`: the classic IIS/Tomcat traversal bypass),
    /// ASCII lower-cased, every run of white space (and control characters) one space.
    static func normalize(_ input: [UInt8]) -> [UInt8] {
        // Most values (ids, paths, lower-case words) are already in normal form: no copy then.
        var clean = true
        var previous: UInt8 = 0
        for b in input {
            if b == 0x26 || b >= 0xC0 || (b &- 65 < 26) || b < 0x20 || b == 0x7F || (b == 0x20 && previous == 0x20) { clean = false; break }
            previous = b
        }
        if clean { return input }
        let decoded = input.contains(0x26) ? htmlEntityDecode(input) : input
        var out: [UInt8] = []
        out.reserveCapacity(decoded.count)
        var lastSpace = false
        var i = 0
        while i < decoded.count {
            var b = decoded[i]
            if (b == 0xC0 || b == 0xC1) && i + 1 < decoded.count {
                // Overlong two-byte forms of ASCII (`%c0%ae` is '.', `%c0%bc` is '<'): decoders
                // that accept them see the ASCII character.
                let next = decoded[i + 1]
                if next >= 0x80 && next <= 0xBF {
                    b = (b & 0x01) << 6 | (next & 0x3F)
                    i += 1
                }
            } else if b >= 0xE2 && b <= 0xEF && i + 2 < decoded.count, let (ascii, length) = Self.foldWide(decoded, i) {
                // Full-width and other look-alike forms that NFKC normalization (Java, Python,
                // .NET) turns into ASCII: `＜script＞`, `169｡254｡169｡254`, `①⑥⑨`.
                out.append(contentsOf: ascii)
                lastSpace = false
                i += length
                continue
            }
            i += 1
            if b == 0 { continue }
            if b <= 0x20 || b == 0x7F {
                // A line break is kept (once per run): it separates shell commands and headers.
                if b == 0x0A || b == 0x0D {
                    if lastSpace, out.last == 0x20 { out[out.count - 1] = 0x0A } else if !lastSpace { out.append(0x0A) }
                } else if !lastSpace {
                    out.append(0x20)
                }
                lastSpace = true
                continue
            }
            lastSpace = false
            out.append(b &- 65 < 26 ? b | 0x20 : b)
        }
        return out
    }

    /// Three-byte UTF-8 characters folded to ASCII: U+FF01–FF5E (full-width ASCII), U+3002 and
    /// U+FF61 (ideographic full stops), U+2460–2473 and U+24EA (circled numbers), U+2215/2216
    /// (division slash, set minus). Japanese text keeps its meaning (full-width punctuation
    /// becomes ASCII punctuation); only the inspection sees the folded form.
    static func foldWide(_ s: [UInt8], _ i: Int) -> ([UInt8], Int)? {
        let scalar = UInt32(s[i] & 0x0F) << 12 | UInt32(s[i + 1] & 0x3F) << 6 | UInt32(s[i + 2] & 0x3F)
        guard s[i + 1] & 0xC0 == 0x80, s[i + 2] & 0xC0 == 0x80 else { return nil }
        switch scalar {
        case 0xFF01...0xFF5E:
            let ascii = UInt8(scalar - 0xFF01 + 0x21)
            return ([ascii &- 65 < 26 ? ascii | 0x20 : ascii], 3)
        case 0x3002, 0xFF61: return ([0x2E], 3)
        case 0x2460...0x2473: return (Array(String(scalar - 0x2460 + 1).utf8), 3)
        case 0x24EA: return ([0x30], 3)
        case 0x2215: return ([0x2F], 3)
        case 0x2216: return ([0x5C], 3)
        default: return nil
        }
    }

    /// `&lt;` `&#60;` `&#x3c;` (with or without `;`, as browsers accept) and the named entities
    /// attackers use to hide markup and schemes.
    static func htmlEntityDecode(_ input: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(input.count)
        var i = 0
        while i < input.count {
            let b = input[i]
            guard b == 0x26, i + 2 < input.count else { out.append(b); i += 1; continue }
            var j = i + 1
            if input[j] == 0x23 {  // &#
                j += 1
                var value: UInt32 = 0
                var digits = 0
                let isHex = j < input.count && input[j] | 0x20 == 0x78
                if isHex { j += 1 }
                while j < input.count, digits < 8 {
                    if isHex, let h = ASCIIDigits.hexValue(input[j]) { value = value << 4 | UInt32(h) }
                    else if !isHex, input[j] >= 0x30 && input[j] <= 0x39 { value = value * 10 + UInt32(input[j] - 0x30) }
                    else { break }
                    digits += 1
                    j += 1
                }
                if digits > 0 {
                    if j < input.count && input[j] == 0x3B { j += 1 }
                    appendUTF8(value, to: &out)
                    i = j
                    continue
                }
            } else {
                var name: [UInt8] = []
                while j < input.count, name.count < 10, (input[j] | 0x20) >= 0x61 && (input[j] | 0x20) <= 0x7A {
                    name.append(input[j] | 0x20)
                    j += 1
                }
                if let value = namedEntities[name] {
                    if j < input.count && input[j] == 0x3B { j += 1 }
                    out.append(value)
                    i = j
                    continue
                }
            }
            out.append(b)
            i += 1
        }
        return out
    }

    static let namedEntities: [[UInt8]: UInt8] = {
        let table: [(String, Character)] = [
            ("lt", "<"), ("gt", ">"), ("quot", "\""), ("apos", "'"), ("amp", "&"), ("colon", ":"),
            ("sol", "/"), ("bsol", "\\"), ("lpar", "("), ("rpar", ")"), ("tab", "\t"), ("newline", "\n"),
            ("semi", ";"), ("equals", "="), ("grave", "`"), ("period", "."), ("comma", ","), ("excl", "!"),
            ("num", "#"), ("dollar", "$"), ("percnt", "%"), ("plus", "+"), ("lbrack", "["), ("rbrack", "]"),
            ("lcub", "{"), ("rcub", "}"), ("nbsp", " "),
        ]
        var result: [[UInt8]: UInt8] = [:]
        for (name, character) in table { result[Array(name.utf8)] = character.asciiValue! }
        return result
    }()


    static func appendUTF8(_ value: UInt32, to out: inout [UInt8]) {
        guard let scalar = Unicode.Scalar(value) else { return }
        if value < 0x80 { out.append(UInt8(value)); return }
        out.append(contentsOf: String(Character(scalar)).utf8)
    }
}

/// Byte-string search helpers for the rules.
extension Array where Element == UInt8 {
    func containsBytes(_ needle: StaticString) -> Bool { firstIndex(of: needle, from: 0) != nil }

    func firstIndex(of needle: StaticString, from start: Int) -> Int? {
        needle.withUTF8Buffer { n -> Int? in
            guard n.count > 0, count >= n.count else { return nil }
            let first = n[0]
            var i = start
            let last = count - n.count
            while i <= last {
                if self[i] == first {
                    var j = 1
                    while j < n.count && self[i + j] == n[j] { j += 1 }
                    if j == n.count { return i }
                }
                i += 1
            }
            return nil
        }
    }

    func hasPrefixBytes(_ prefix: StaticString, at index: Int = 0) -> Bool {
        prefix.withUTF8Buffer { p in
            guard index + p.count <= count else { return false }
            for j in 0..<p.count where self[index + j] != p[j] { return false }
            return true
        }
    }
}

@inline(__always) func isWordByte(_ b: UInt8) -> Bool {
    (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x5F || b >= 0x80 || (b >= 0x41 && b <= 0x5A)
}
