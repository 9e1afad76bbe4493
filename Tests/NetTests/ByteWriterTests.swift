import Net
import Testing

struct ByteWriterTests {
    /// Pieces of every size across several doublings read back exactly as an array built by
    /// appending them, whatever the starting room.
    /// New writers of every size start empty, write and hand over their bytes, and share nothing
    /// (the small ones are copied from one zero mapping, the large ones allocated).
    @Test func writersOfEverySizeAreEmptyAndIndependent() {
        for capacity in [0, 16, 320, 64 * 1024, 64 * 1024 + 1, 200_000] {
            var a = ByteWriter(capacity: capacity), b = ByteWriter(capacity: capacity)
            #expect(a.count == 0 && b.count == 0)
            let text = Array(repeating: UInt8(ascii: "x"), count: capacity + 10)
            text.withUnsafeBytes { a.append(bytes: $0) }
            b.append(UInt8(ascii: "y"))
            #expect(a.take() == text)
            #expect(b.take() == [UInt8(ascii: "y")])
            #expect(ByteWriter(capacity: capacity).withUnsafeBytes { $0.count } == 0)
        }
    }

    @Test func piecesReadBackAcrossGrowth() {
        for capacity in [0, 1, 16, 100] {
            var writer = ByteWriter(capacity: capacity)
            var expected: [UInt8] = []
            for size in 0..<70 {
                let piece = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ size) }
                piece.withUnsafeBytes { writer.append(bytes: $0) }
                expected += piece
                writer.append(UInt8(size))
                expected.append(UInt8(size))
            }
            #expect(writer.count == expected.count)
            #expect(writer.bytes == expected)
            #expect(writer.withUnsafeBytes { Array($0) } == expected)
            #expect(writer.take() == expected)
            #expect(writer.count == 0 && writer.bytes.isEmpty)
            // Usable again after handing its storage over.
            writer.append("after")
            #expect(writer.bytes == Array("after".utf8))
        }
    }

    /// Literals of one scalar, whichever way the compiler stores them (with or without a pointer).
    @Test func literalsOfOneScalar() {
        var writer = ByteWriter()
        writer.append("}")
        writer.append(StaticString(unicodeScalarLiteral: "é"))
        writer.append(StaticString(unicodeScalarLiteral: "x"))
        #expect(writer.bytes == Array("}éx".utf8))
    }

    @Test func resetKeepsNothingWritten() {
        var writer = ByteWriter(capacity: 8)
        writer.append("a line longer than the room")
        writer.reset()
        writer.append(utf8: "é\r\n")
        #expect(writer.bytes == Array("é\r\n".utf8))
    }

    @Test func decimalsAsStringDescribesThem() {
        for value in [0, 7, 9, 10, 99, 100, 12345, -1, -10, -987654321, Int.max, Int.min] {
            var writer = ByteWriter()
            writer.appendDecimal(value)
            #expect(writer.bytes == Array(String(value).utf8), "\(value)")
        }
    }
}
