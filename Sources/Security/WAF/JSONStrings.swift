import Net
/// Every string (keys and values) in a JSON text, decoded, without building a document: the
/// filter needs to see what the application will see, not to validate (the API's own parser
/// does that and answers 400 for bad JSON). Bounded by the body size rule.
enum JSONStrings {
    /// Calls `visit(path, bytes)` for each string; `path` is the key the value belongs to
    /// (`$.title`), or `$` for keys and array elements. `path` is made only when called (only a
    /// match names it): building it for every value was two allocations per JSON string.
    ///
    /// `skippingWords`: strings of ASCII letters and `_` alone (`"title"`, `"medium"`: every key
    /// of the API and its enumerated values) are not visited, nor decoded into arrays of their
    /// own: the inspector's content rules find nothing in a word (`RequestInspector.check`: such
    /// a value takes its "path-like" branch, which needs a digit or one of `.:-[/` to look any
    /// further). Decoding, normalizing and checking them was ~2.5k instructions of a `POST`.
    static func forEach(_ body: [UInt8], skippingWords: Bool = false, _ visit: (_ path: () -> String, [UInt8], _ isKey: Bool) -> Bool) {
        var i = 0
        var lastKey: [UInt8]?
        var lastWordKey: Range<Int>?
        var expectingKey = false
        var containers = Containers()
        while i < body.count {
            let b = body[i]
            switch b {
            case 0x7B: containers.push(object: true); expectingKey = true; i += 1
            case 0x5B: containers.push(object: false); expectingKey = false; i += 1
            case 0x7D, 0x5D: containers.pop(); expectingKey = false; i += 1
            case 0x2C: expectingKey = containers.innermostIsObject; i += 1
            case 0x3A: expectingKey = false; i += 1
            case 0x22:
                if skippingWords, let word = wordString(body, from: i + 1) {
                    i = word.upperBound + 1
                    if expectingKey {
                        lastKey = nil
                        lastWordKey = word
                    }
                    continue
                }
                let (value, end) = decodeString(body, from: i + 1)
                i = end
                if expectingKey {
                    lastKey = value
                    lastWordKey = nil
                    if !visit({ "$" }, value, true) { return }
                } else {
                    let inArray = containers.innermostIsArray
                    // The key as bytes only when a match names it (the closure runs only then).
                    let decodedKey = lastKey, wordKey = lastWordKey
                    if !visit({ path(key: decodedKey ?? wordKey.map { Array(body[$0]) }, inArray: inArray) }, value, false) { return }
                }
            default: i += 1
            }
        }
    }

    /// The containers open at the cursor, innermost last: one bit a level (1: object) in a word,
    /// deeper levels in an array. An array of brackets was an allocation per JSON body (~300
    /// instructions of a `POST`, callgrind); real bodies are a level or two deep.
    struct Containers {
        private var bits: UInt64 = 0
        private var depth = 0
        private var deeper: [Bool] = []

        mutating func push(object: Bool) {
            if depth < 64 {
                bits = bits << 1 | (object ? 1 : 0)
            } else {
                deeper.append(object)
            }
            depth += 1
        }

        /// A closing bracket with nothing open is ignored (the filter reads what it is given).
        mutating func pop() {
            guard depth > 0 else { return }
            depth -= 1
            if depth < 64 { bits >>= 1 } else { deeper.removeLast() }
        }

        var innermostIsObject: Bool {
            depth == 0 ? false : depth <= 64 ? bits & 1 == 1 : deeper.last!
        }

        var innermostIsArray: Bool {
            depth == 0 ? false : !innermostIsObject
        }
    }

    /// The range of a string's content when it is one word (ASCII letters and `_`, closed by its
    /// quote, no escape), else nil.
    static func wordString(_ s: [UInt8], from start: Int) -> Range<Int>? {
        // Through a buffer pointer: no bounds check a byte.
        s.withUnsafeBufferPointer { buffer in
            var end = start
            while end < buffer.count {
                let b = buffer[end]
                if b == 0x22 { return end > start ? start..<end : nil }
                guard (b | 0x20) &- 0x61 < 26 || b == 0x5F else { return nil }
                end += 1
            }
            return nil
        }
    }

    /// `$.title`, `$.tags[]`, `$`, `$[]`.
    private static func path(key: [UInt8]?, inArray: Bool) -> String {
        let base = key.map { "$." + String(decoding: $0.prefix(64), as: UTF8.self) } ?? "$"
        return inArray ? base + "[]" : base
    }

    static func decodeString(_ s: [UInt8], from start: Int) -> ([UInt8], Int) {
        // Most strings have no escape: copied in one allocation of the right size (appending
        // byte by byte grew the array two or three times per string, perf on `POST /todos`).
        var end = start
        // Eight bytes at a time to the closing quote or an escape (byte by byte was ~10
        // instructions a byte, callgrind).
        s.withUnsafeBytes { raw in
            while end + 8 <= raw.count {
                let word = raw.loadUnaligned(fromByteOffset: end, as: UInt64.self)
                if WordBytes.anyEqual(0x22, in: word) | WordBytes.anyEqual(0x5C, in: word) != 0 { break }
                end += 8
            }
        }
        while end < s.count && s[end] != 0x22 && s[end] != 0x5C { end += 1 }
        if end == s.count || s[end] == 0x22 { return (Array(s[start..<end]), min(end + 1, s.count)) }
        var out: [UInt8] = []
        out.reserveCapacity(end - start + 16)
        out.append(contentsOf: s[start..<end])
        var i = end
        while i < s.count {
            let b = s[i]
            if b == 0x22 { return (out, i + 1) }
            if b == 0x5C, i + 1 < s.count {
                let e = s[i + 1]
                i += 2
                switch e {
                case 0x6E: out.append(0x0A)
                case 0x72: out.append(0x0D)
                case 0x74: out.append(0x09)
                case 0x62: out.append(0x08)
                case 0x66: out.append(0x0C)
                case 0x75:
                    guard i + 4 <= s.count, let v = hex4(s, i) else { continue }
                    i += 4
                    var scalar = v
                    if (0xD800..<0xDC00).contains(v), i + 6 <= s.count, s[i] == 0x5C, s[i + 1] == 0x75, let low = hex4(s, i + 2), (0xDC00..<0xE000).contains(low) {
                        scalar = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00)
                        i += 6
                    }
                    TextTransform.appendUTF8(scalar, to: &out)
                default: out.append(e)
                }
                continue
            }
            out.append(b)
            i += 1
        }
        return (out, i)
    }

    static func hex4(_ s: [UInt8], _ i: Int) -> UInt32? {
        var v: UInt32 = 0
        for k in 0..<4 {
            guard let h = ASCIIDigits.hexValue(s[i + k]) else { return nil }
            v = v << 4 | UInt32(h)
        }
        return v
    }
}
