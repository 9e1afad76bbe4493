import Testing
import Net

/// Decimal digits written into a buffer agree with Swift's own description of the number.
struct ASCIIDigitsTests {
    @Test func appendDecimalMatchesDescription() {
        var values: [Int] = [0, 1, 9, 10, 99, 100, 200, 404, 999, 1000, 65535, Int.max, Int.min, -1, -10, -12345]
        var power = 1
        for _ in 0..<18 { power *= 10; values += [power - 1, power, power + 1, -power] }
        var output: [UInt8] = Array("x=".utf8)
        var expected = "x="
        for value in values {
            ASCIIDigits.appendDecimal(value, to: &output)
            output.append(UInt8(ascii: ","))
            expected += "\(value),"
        }
        #expect(String(decoding: output, as: UTF8.self) == expected)
    }
}
