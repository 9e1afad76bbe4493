import Net

/// A statement's parameter values in PostgreSQL's text format, in one byte buffer: each value as
/// its length (4 bytes, native order; -1 for SQL NULL), its UTF-8 bytes and a NUL, one after the
/// other. libpq reads them in place (`withCStrings`).
///
/// Why not `[String?]`: freeing an array of optional strings destroys each element through the
/// generic value witness, ~100 instructions a value; a `PUT`'s 16 parameters were ~1,600
/// instructions of its release (callgrind), and the values were then copied into a C buffer
/// anyway. Why not `[UInt8]`: appending a value's length, bytes and NUL to an array took ~200
/// instructions a value (three appends, each checking capacity and uniqueness). The bytes are
/// written straight into a tail-allocated buffer, one allocation for all values.
///
/// A value type: the buffer is copied before a change when it is shared (a rebound statement
/// never shares it; the `StringInterpolation` does once per statement built).
public struct PostgresBinds: @unchecked Sendable, Equatable, ExpressibleByArrayLiteral, CustomStringConvertible {
    // @unchecked Sendable: the buffer is only written while uniquely referenced (`reserve`), so a
    // copy sent to another thread is never written under it.
    // Header: bytes used, and the capacity asked for (`ManagedBuffer.capacity` asks malloc for the
    // block's usable size on every read: ~13 instructions an append).
    @usableFromInline final class Storage: ManagedBuffer<(used: Int, capacity: Int), UInt8> {}

    @usableFromInline var storage: Storage?
    @usableFromInline var storedCount = 0
    /// Number of values.
    public var count: Int { storedCount }

    public init() {}

    /// Room for `bytes` bytes of values before the buffer grows (each value takes 5 more).
    @inlinable
    public init(reservingBytes bytes: Int) {
        storage = Self.makeStorage(capacity: bytes, copying: nil)
    }

    public init(arrayLiteral values: String?...) {
        for value in values { append(value) }
    }

    @inlinable
    public mutating func append(_ value: String?) {
        guard let value else {
            let at = reserve(4)
            at.storeBytes(of: Int32(-1), as: Int32.self)
            return
        }
        value.withBorrowedUTF8 { bytes in
            precondition(bytes.count <= Int(Int32.max), "a parameter value is at most 2 GiB")
            let at = reserve(bytes.count + 5)
            at.storeBytes(of: Int32(truncatingIfNeeded: bytes.count), as: Int32.self)
            if let base = bytes.baseAddress { (at + 4).copyMemory(from: base, byteCount: bytes.count) }
            (at + 4 + bytes.count).storeBytes(of: 0, as: UInt8.self)
        }
    }

    @inlinable
    public mutating func append(_ value: Bool?) {
        append(value.map { $0 ? "true" : "false" })
    }

    @inlinable
    public mutating func append(_ value: Int?) {
        append(value.map { String($0) })
    }

    @inlinable
    public mutating func append(_ value: Int64?) {
        append(value.map { String($0) })
    }

    @inlinable
    public mutating func append(_ value: (some PostgresBindable)?) {
        append(value?.postgresText)
    }

    /// Where the next value's `bytes` bytes go, with room made for them (the buffer copied when
    /// shared, doubled when full); counts the value.
    @inlinable
    mutating func reserve(_ bytes: Int) -> UnsafeMutableRawPointer {
        storedCount += 1
        if storage == nil || !isKnownUniquelyReferenced(&storage!) || storage!.header.used + bytes > storage!.header.capacity {
            let used = storage?.header.used ?? 0
            storage = Self.makeStorage(capacity: max(used + bytes, (storage?.header.capacity ?? 0) * 2, 64), copying: storage)
        }
        let buffer = storage!
        let used = buffer.header.used
        buffer.header.used = used + bytes
        return buffer.withUnsafeMutablePointerToElements { UnsafeMutableRawPointer($0 + used) }
    }

    @usableFromInline
    static func makeStorage(capacity: Int, copying old: Storage?) -> Storage {
        let buffer = Storage.create(minimumCapacity: capacity) { _ in (used: 0, capacity: capacity) } as! Storage
        if let old {
            let used = old.header.used
            old.withUnsafeMutablePointerToElements { from in
                buffer.withUnsafeMutablePointerToElements { to in to.update(from: from, count: used) }
            }
            buffer.header.used = used
        }
        return buffer
    }

    /// The used bytes (empty when there are none).
    private func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        guard let storage else { return body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return storage.withUnsafeMutablePointerToElements { body(UnsafeRawBufferPointer(start: $0, count: storage.header.used)) }
    }

    public static func == (a: PostgresBinds, b: PostgresBinds) -> Bool {
        a.count == b.count && a.withBytes { x in b.withBytes { y in x.elementsEqual(y) } }
    }

    /// The values back as strings (tests, diagnostics); nil is SQL NULL.
    public var values: [String?] {
        var result: [String?] = []
        result.reserveCapacity(count)
        withBytes { buffer in
            Self.walk(buffer) { offset, length in
                result.append(length < 0 ? nil : String(decoding: buffer[offset..<offset + length], as: UTF8.self))
            }
        }
        return result
    }

    /// Values are not shown (they may be personal data), only how many there are.
    public var description: String { "\(count) values" }

    /// Each value's offset and length in `buffer` (length -1: NULL), in order.
    private static func walk(_ buffer: UnsafeRawBufferPointer, _ body: (_ offset: Int, _ length: Int) -> Void) {
        var offset = 0
        while offset < buffer.count {
            let length = Int(buffer.loadUnaligned(fromByteOffset: offset, as: Int32.self))
            offset += 4
            body(offset, length)
            if length >= 0 { offset += length + 1 }
        }
    }

    /// Runs `body` with a NUL-terminated C string per value (NULL stays a null pointer), pointing
    /// into the buffer itself; the pointer array is on the stack when small. libpq copies what it
    /// needs before returning.
    func withCStrings<R>(_ body: (UnsafeBufferPointer<UnsafePointer<CChar>?>) -> R) -> R {
        withBytes { buffer in
            withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: max(count, 1)) { pointers in
                var index = 0
                if let base = buffer.baseAddress {
                    let text = base.assumingMemoryBound(to: CChar.self)
                    Self.walk(buffer) { offset, length in
                        pointers.initializeElement(at: index, to: length < 0 ? nil : text + offset)
                        index += 1
                    }
                }
                // Pointers are trivial: nothing to deinitialize.
                return body(UnsafeBufferPointer(rebasing: pointers.prefix(index)))
            }
        }
    }
}
