import Net
import Testing

struct ByteWriterTests {
    /// Pieces of every size across several doublings read back exactly as an array built by
    /// appending them, whatever the starting room.
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
