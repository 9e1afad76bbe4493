import Testing
@testable import Postgres

/// `PostgresType.writeUUID` (eight digits per 64-bit word) against the plain byte-by-byte form,
/// on every byte value in every position.
struct UUIDTextTests {
    static func reference(_ bytes: [UInt8]) -> String {
        var text = ""
        for (index, byte) in bytes.enumerated() {
            if index == 4 || index == 6 || index == 8 || index == 10 { text += "-" }
            let digits = String(byte, radix: 16)
            text += digits.count == 1 ? "0" + digits : digits
        }
        return text
    }

    static func written(_ bytes: [UInt8]) -> String {
        var out = [UInt8](repeating: 0, count: 36)
        bytes.withUnsafeBytes { source in out.withUnsafeMutableBufferPointer { PostgresType.writeUUID(source, into: $0) } }
        return String(decoding: out, as: UTF8.self)
    }

    @Test func everyByteValueInEveryPositionIsTwoLowerCaseDigits() {
        for value in 0...255 {
            for position in 0..<16 {
                var bytes = [UInt8](repeating: UInt8((position * 37) & 0xFF), count: 16)
                bytes[position] = UInt8(value)
                #expect(Self.written(bytes) == Self.reference(bytes))
            }
        }
    }

    @Test func knownUUIDsReadAsPostgreSQLPrintsThem() {
        let bytes: [UInt8] = [0x6f, 0x1c, 0x1d, 0x5e, 0x8a, 0x3b, 0x4c, 0x2d, 0x9e, 0x0f, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab]
        #expect(Self.written(bytes) == "6f1c1d5e-8a3b-4c2d-9e0f-0123456789ab")
        #expect(Self.written([UInt8](repeating: 0, count: 16)) == "00000000-0000-0000-0000-000000000000")
        #expect(Self.written([UInt8](repeating: 0xFF, count: 16)) == "ffffffff-ffff-ffff-ffff-ffffffffffff")
        #expect(bytes.withUnsafeBytes { PostgresType.formatUUID($0) } == "6f1c1d5e-8a3b-4c2d-9e0f-0123456789ab")
    }
}
