/// A string's UTF-8 bytes, read where the string is. `var copy = text; copy.withUTF8 { … }` (the
/// usual way) makes the string mutable, which retains its storage and releases it after: two
/// atomic operations for every string written into a response, a log line or a query, 13 calls
/// a `POST` in the JSON and byte writers alone (callgrind). `withContiguousStorageIfAvailable`
/// reads a native string (and a small one, copied to the stack) as it is; a string that is not
/// contiguous UTF-8 (bridged, never on Linux) still takes the copying path.
/// Not for `Substring`: its view is a `Slice`, whose generic `withContiguousStorageIfAvailable`
/// cost more than the retain it saves (`GET /health` +700 instructions, callgrind).
extension String {
    @inlinable @inline(__always)
    public func withBorrowedUTF8<Result>(_ body: (UnsafeBufferPointer<UInt8>) throws -> Result) rethrows -> Result {
        if let result = try utf8.withContiguousStorageIfAvailable(body) { return result }
        var copy = self
        return try copy.withUTF8(body)
    }
}
