extension ArraySlice where Element == UInt8 {
    /// Whether these bytes spell `lowercase` in any ASCII case (header names, RFC 9110 §5.1; token
    /// values such as `https`), compared in place: no string per header.
    /// Inlined, its length test first: most header names differ in length from the one sought.
    @inline(__always)
    func equalsIgnoringASCIICase(_ lowercase: StaticString) -> Bool {
        guard count == lowercase.utf8CodeUnitCount else { return false }
        return lowercase.withUTF8Buffer { wanted in
            var i = startIndex
            for b in wanted {
                if self[i] &- 65 < 26 ? self[i] | 0x20 != b : self[i] != b { return false }
                i += 1
            }
            return true
        }
    }
}
