import CLibPQ

/// The rows of one statement, decoded from libpq's binary result format on demand.
/// Owns the `PGresult` (freed on deinit); immutable, so it may cross to the awaiting task.
public final class PostgresResult: @unchecked Sendable {
    private let handle: OpaquePointer
    public let rowCount: Int
    public let columnCount: Int
    /// The column descriptions this result shares, for a statement sent without Describe: kept
    /// alive as long as the result.
    private let shape: RowShape?

    init(_ handle: OpaquePointer, shape: RowShape? = nil) {
        self.handle = handle
        self.shape = shape
        rowCount = Int(PQntuples(handle))
        columnCount = Int(PQnfields(handle))
    }

    deinit { PQclear(handle) }

    /// Whether it came from an execution without Describe (for tests).
    var isShaped: Bool { shape != nil }

    /// Rows affected by INSERT/UPDATE/DELETE (PQcmdTuples), 0 otherwise.
    public var affectedRows: Int {
        Int(String(cString: PQcmdTuples(handle))) ?? 0
    }

    public func columnIndex(_ name: String) -> Int? {
        let index = Int(PQfnumber(handle, name))
        return index >= 0 ? index : nil
    }

    public func isNull(_ row: Int, _ column: Int) -> Bool {
        PQgetisnull(handle, Int32(row), Int32(column)) != 0
    }

    /// The type OID of a column (25 text, 23 int4, 2950 uuid, ...).
    public func typeOID(_ column: Int) -> UInt32 { UInt32(PQftype(handle, Int32(column))) }

    /// A value's bytes as libpq holds them (binary format), nil for NULL or out of range. Valid only
    /// while this result lives: for rendering a row straight into a response without making a
    /// `String` of each field.
    public func value(_ row: Int, _ column: Int) -> UnsafeRawBufferPointer? { bytes(row, column) }

    private func bytes(_ row: Int, _ column: Int) -> UnsafeRawBufferPointer? {
        guard row >= 0, row < rowCount, column >= 0, column < columnCount else { return nil }
        // One call (value-access.patch's PQgetfield), not PQgetisnull, PQgetlength and PQgetvalue.
        var length: Int32 = 0
        guard let pointer = todo_get_field(handle, Int32(row), Int32(column), &length), length >= 0 else { return nil }
        return UnsafeRawBufferPointer(start: pointer, count: Int(length))
    }

    /// text, varchar, name (and any column whose binary form is its UTF-8 text).
    public func string(_ row: Int, _ column: Int) -> String? {
        guard let bytes = bytes(row, column) else { return nil }
        if typeOID(column) == PostgresType.uuid { return PostgresType.formatUUID(bytes) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// int2, int4, int8 (big-endian in binary format).
    public func int(_ row: Int, _ column: Int) -> Int? {
        guard let bytes = bytes(row, column) else { return nil }
        switch bytes.count {
        case 2: return Int(Int16(bigEndian: bytes.loadUnaligned(as: Int16.self)))
        case 4: return Int(Int32(bigEndian: bytes.loadUnaligned(as: Int32.self)))
        case 8: return Int(Int64(bigEndian: bytes.loadUnaligned(as: Int64.self)))
        default: return nil
        }
    }

    public func bool(_ row: Int, _ column: Int) -> Bool? {
        guard let bytes = bytes(row, column), bytes.count == 1 else { return nil }
        return bytes[0] != 0
    }

    /// uuid in its canonical lower-case text form.
    public func uuid(_ row: Int, _ column: Int) -> String? {
        guard let bytes = bytes(row, column), bytes.count == 16 else { return nil }
        return PostgresType.formatUUID(bytes)
    }

    /// timestamptz / timestamp as microseconds since the Unix epoch (exact: for keyset cursors).
    public func timestampMicroseconds(_ row: Int, _ column: Int) -> Int64? {
        guard let bytes = bytes(row, column), bytes.count == 8 else { return nil }
        return Int64(bigEndian: bytes.loadUnaligned(as: Int64.self)) + PostgresType.postgresEpochMilliseconds * 1000
    }

    /// timestamptz / timestamp as milliseconds since the Unix epoch (binary: microseconds since
    /// 2000-01-01 UTC).
    public func timestampMilliseconds(_ row: Int, _ column: Int) -> Int64? {
        guard let bytes = bytes(row, column), bytes.count == 8 else { return nil }
        let micros = Int64(bigEndian: bytes.loadUnaligned(as: Int64.self))
        return micros / 1000 + PostgresType.postgresEpochMilliseconds
            - (micros < 0 && micros % 1000 != 0 ? 1 : 0)
    }
}

/// Type OIDs (pg_type.dat) and binary-format helpers.
public enum PostgresType {
    /// The one OID decoding depends on (a uuid column read as a string).
    public static let uuid: UInt32 = 2950

    /// 2000-01-01T00:00:00Z in Unix milliseconds.
    static let postgresEpochMilliseconds: Int64 = 946_684_800_000

    /// The 36-byte text form of a 16-byte binary uuid, into `out` (36 bytes).
    /// Digits computed, not looked up in a table (a `static let` array cost a lazy-initialisation
    /// check and two bounds checks per byte: ~1,200 instructions a uuid, callgrind), and four
    /// bytes at a time in one 64-bit word (`hexDigits`): the byte-at-a-time loop was ~490
    /// instructions a uuid, two uuids a `POST`, twenty a list page.
    public static func writeUUID(_ bytes: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<UInt8>) {
        precondition(bytes.count >= 16 && out.count >= 36)
        let source = bytes.baseAddress!
        let target = UnsafeMutableRawPointer(out.baseAddress!)
        // 8-4-4-4-12: each word is the 8 digits of 4 bytes.
        let first = hexDigits(source.loadUnaligned(as: UInt32.self))
        let second = hexDigits(source.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        let third = hexDigits(source.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        let fourth = hexDigits(source.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
        // Each piece put in memory order (`.littleEndian`) as it is stored, so that the halves
        // are taken by significance on any host.
        target.storeBytes(of: first.littleEndian, as: UInt64.self)
        target.storeBytes(of: UInt8(ascii: "-"), toByteOffset: 8, as: UInt8.self)
        target.storeBytes(of: UInt32(truncatingIfNeeded: second).littleEndian, toByteOffset: 9, as: UInt32.self)
        target.storeBytes(of: UInt8(ascii: "-"), toByteOffset: 13, as: UInt8.self)
        target.storeBytes(of: UInt32(truncatingIfNeeded: second >> 32).littleEndian, toByteOffset: 14, as: UInt32.self)
        target.storeBytes(of: UInt8(ascii: "-"), toByteOffset: 18, as: UInt8.self)
        target.storeBytes(of: UInt32(truncatingIfNeeded: third).littleEndian, toByteOffset: 19, as: UInt32.self)
        target.storeBytes(of: UInt8(ascii: "-"), toByteOffset: 23, as: UInt8.self)
        target.storeBytes(of: UInt32(truncatingIfNeeded: third >> 32).littleEndian, toByteOffset: 24, as: UInt32.self)
        target.storeBytes(of: fourth.littleEndian, toByteOffset: 28, as: UInt64.self)
    }

    /// The lower-case hex digits of four bytes (as loaded from memory), first byte's first: the
    /// text's character k in bits 8k. Each byte's nibbles are moved to bytes of their own, then
    /// `0`-`9` and `a`-`f` added in all eight lanes at once (a lane of 10 or more, +6, has bit 4).
    @inline(__always)
    static func hexDigits(_ fourBytes: UInt32) -> UInt64 {
        let inOrder = UInt64(UInt32(littleEndian: fourBytes))  // the first byte in the low bits
        var spread = (inOrder | inOrder << 16) & 0x0000_FFFF_0000_FFFF
        spread = (spread | spread << 8) & 0x00FF_00FF_00FF_00FF  // byte k at bits 16k
        let nibbles = (spread >> 4) & 0x000F_000F_000F_000F | (spread & 0x000F_000F_000F_000F) << 8
        let letters = ((nibbles &+ 0x0606_0606_0606_0606) & 0x1010_1010_1010_1010) >> 4
        return nibbles &+ 0x3030_3030_3030_3030 &+ letters &* 39
    }

    /// Written straight into the string's storage: one allocation, not an array and a copy.
    static func formatUUID(_ bytes: UnsafeRawBufferPointer) -> String {
        precondition(bytes.count >= 16)
        return String(unsafeUninitializedCapacity: 36) { text in
            writeUUID(bytes, into: text)
            return 36
        }
    }
}
