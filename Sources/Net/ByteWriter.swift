import Glibc

/// Bytes appended to room already allocated: the document is `storage[0..<count]`, the rest is
/// zeroed room, doubled when short. Not an array grown by `append(contentsOf:)`: that generic path
/// cost ~90 instructions an append, and a `GET /todos/{id}` made 57 of them for its body and its
/// access line, ~15 more for its response head (5.2k of its 51.6k instructions, callgrind). A
/// copy into our own room costs a third of that. `JSONWriter` and the response encoder write
/// through it.
public struct ByteWriter: Sendable {
    // Usable from inline code: the appends are inlined into the writers of other modules.
    @usableFromInline var storage: [UInt8]
    @usableFromInline var written = 0
    public var count: Int { written }

    /// `capacity` 0: no room yet (no allocation); the first append makes it.
    public init(capacity: Int = 256) {
        storage = capacity <= 0 ? [] : Self.zeroed(Swift.max(capacity, 16))
    }

    /// `size` zeroed bytes. A copy of zeroed memory: an array made from a buffer takes the
    /// standard library's specialized allocation. `[UInt8](unsafeUninitializedCapacity:)`
    /// allocates through an unspecialized generic (its storage type looked up at run time: ~450
    /// instructions a writer, one a `POST /todos`, callgrind), and `repeating:` filled byte by
    /// byte (~580 for 256 bytes).
    private static func zeroed(_ size: Int) -> [UInt8] {
        if size <= zeroes.count {
            return Array(UnsafeRawBufferPointer(rebasing: zeroes[0..<size]))
        }
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            memset(buffer.baseAddress!, 0, buffer.count)
            initialized = buffer.count
        }
    }

    /// Zeroes to copy new writers from: an anonymous read-only mapping, so every page is the
    /// kernel's shared zero page (no resident memory of its own). Never written, so shared freely.
    nonisolated(unsafe) private static let zeroes: UnsafeRawBufferPointer = {
        let size = 64 * 1024
        let pages = mmap(nil, size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let pages, pages != MAP_FAILED else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: pages, count: size)
    }()

    /// A copy of what was written. `take()` hands the storage over instead (no copy).
    public var bytes: [UInt8] { Array(storage[0..<count]) }

    /// What was written, leaving the writer empty (the storage handed over: no copy).
    public mutating func take() -> [UInt8] {
        var written: [UInt8] = []
        swap(&written, &storage)
        written.removeLast(written.count - self.written)
        self.written = 0
        return written
    }

    /// Empties the writer, keeping its room (a writer reused line after line).
    public mutating func reset() {
        written = 0
    }

    /// The room there is, written or not.
    public var capacity: Int { storage.count }

    /// Makes room for `additional` more bytes at once (one copy, where appends that outgrow the
    /// room double it step by step).
    public mutating func reserve(_ additional: Int) {
        if storage.count - written < additional { grow(to: written + additional) }
    }

    @inlinable
    public func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        let written = written
        return try storage.withUnsafeBytes { try body(UnsafeRawBufferPointer(start: $0.baseAddress, count: written)) }
    }

    @inlinable @inline(__always)
    public mutating func append(_ source: UnsafeRawPointer?, count length: Int) {
        guard length > 0, let source else { return }
        let at = written
        if storage.count - at < length { grow(to: at + length) }
        storage.withUnsafeMutableBytes { $0.baseAddress.unsafelyUnwrapped.advanced(by: at).copyMemory(from: source, byteCount: length) }
        written = at + length
    }

    @inlinable @inline(__always)
    public mutating func append(_ byte: UInt8) {
        let at = written
        if at == storage.count { grow(to: at + 1) }
        storage.withUnsafeMutableBytes { $0[at] = byte }
        written = at + 1
    }

    @inlinable @inline(__always)
    public mutating func append(_ text: StaticString) {
        // A literal of one scalar may be stored as the scalar, without a pointer (`utf8Start`
        // would trap).
        guard text.hasPointerRepresentation else { return text.withUTF8Buffer { append(bytes: UnsafeRawBufferPointer($0)) } }
        append(text.utf8Start, count: text.utf8CodeUnitCount)
    }

    @inlinable @inline(__always)
    public mutating func append(bytes: UnsafeRawBufferPointer) {
        append(bytes.baseAddress, count: bytes.count)
    }

    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append(bytes: $0) }
    }

    public mutating func append(utf8 text: String) {
        text.withBorrowedUTF8 { append(UnsafeRawPointer($0.baseAddress), count: $0.count) }
    }

    /// `value` in decimal, from a stack buffer in one copy.
    public mutating func appendDecimal(_ value: Int) {
        if value >= 0 && value < 10 { return append(UInt8(ascii: "0") &+ UInt8(value)) }
        ASCIIDigits.withDecimal(value) { append(bytes: $0) }
    }

    /// At least doubles, so a long document still takes few copies. New room from `zeroed` and
    /// one copy of what is written: appending `repeatElement(0, …)` filled the room byte by byte.
    @usableFromInline @inline(never)
    mutating func grow(to needed: Int) {
        var bigger = Self.zeroed(Swift.max(needed, storage.count * 2, 16))
        let written = written
        if written > 0 {
            bigger.withUnsafeMutableBytes { to in
                storage.withUnsafeBytes { from in
                    to.baseAddress.unsafelyUnwrapped.copyMemory(from: from.baseAddress.unsafelyUnwrapped, byteCount: written)
                }
            }
        }
        storage = bigger
    }
}
