extension ArraySlice where Element == UInt8 {
    /// Whether these bytes spell `lowercase` in any ASCII case (header names, RFC 9110 §5.1; token
    /// values such as `https`), compared in place: no string per header.
    /// Inlined, its length test first: most header names differ in length from the one sought.
    @inline(__always)
    func equalsIgnoringASCIICase(_ lowercase: StaticString) -> Bool {
        guard count == lowercase.utf8CodeUnitCount else { return false }
        return withUnsafeBytes { $0.equalsIgnoringASCIICase(lowercase) }
    }
}

extension UnsafeRawBufferPointer {
    /// As the slice's, on bytes already in hand: no bounds checks, no slice offsets (the slice
    /// form, called per header name and per candidate, was ~190 instructions a header, callgrind).
    @inline(__always)
    func equalsIgnoringASCIICase(_ lowercase: StaticString) -> Bool {
        guard count == lowercase.utf8CodeUnitCount, let base = baseAddress else { return count == lowercase.utf8CodeUnitCount }
        guard lowercase.hasPointerRepresentation else {  // one scalar, stored without a pointer
            return lowercase.withUTF8Buffer { wanted in (0..<count).allSatisfy { i in
                let b = base.load(fromByteOffset: i, as: UInt8.self)
                return (b &- 65 < 26 ? b | 0x20 : b) == wanted[i]
            } }
        }
        let wanted = lowercase.utf8Start
        for i in 0..<count {
            let b = base.load(fromByteOffset: i, as: UInt8.self)
            if (b &- 65 < 26 ? b | 0x20 : b) != wanted[i] { return false }
        }
        return true
    }
}
