extension UnsafeRawBufferPointer {
    /// Whether these bytes spell `lowercase` in any ASCII case (header names, RFC 9110 §5.1; token
    /// values such as `https`, `chunked`; media types), compared in place: no string made. Its
    /// length test first (most header names differ in length from the one sought); no bounds
    /// checks or slice offsets (a slice form called per header name was ~190 instructions a
    /// header, callgrind). One comparison for the parser, the request filter and the routes.
    @inlinable @inline(__always)
    public func equalsIgnoringASCIICase(_ lowercase: StaticString) -> Bool {
        guard count == lowercase.utf8CodeUnitCount else { return false }
        guard let base = baseAddress else { return true }
        // A literal of one scalar may be stored without a pointer (`utf8Start` would trap).
        guard lowercase.hasPointerRepresentation else {
            return lowercase.withUTF8Buffer { UnsafeRawBufferPointer($0).equalsIgnoringASCIICase(bytes: base, count: count) }
        }
        return UnsafeRawBufferPointer(start: lowercase.utf8Start, count: count).equalsIgnoringASCIICase(bytes: base, count: count)
    }

    /// Whether `count` bytes at `base`, ASCII letters lowered, equal these (lowercase) bytes.
    @inlinable @inline(__always)
    func equalsIgnoringASCIICase(bytes base: UnsafeRawPointer, count: Int) -> Bool {
        for i in 0..<count {
            let b = base.load(fromByteOffset: i, as: UInt8.self)
            if (b &- 65 < 26 ? b | 0x20 : b) != self[i] { return false }
        }
        return true
    }
}

extension ArraySlice where Element == UInt8 {
    /// As the raw buffer's, for a slice of a request's head.
    @inlinable @inline(__always)
    public func equalsIgnoringASCIICase(_ lowercase: StaticString) -> Bool {
        guard count == lowercase.utf8CodeUnitCount else { return false }
        return withUnsafeBytes { $0.equalsIgnoringASCIICase(lowercase) }
    }
}
