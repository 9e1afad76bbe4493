import Glibc
import Testing
@testable import Observability

/// RFC 3339 formatting and parsing against the C library's calendar (`gmtime_r`).
struct TimestampTests {
    static func reference(_ milliseconds: Int64) -> String {
        var seconds = time_t(milliseconds.floorDivided(by: 1000).quotient)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        let ms = milliseconds.floorDivided(by: 1000).remainder
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(ms), 3))Z"
    }

    /// The fast civil-date form agrees with Hinnant's on every day of its range's edges and of
    /// years -5000 to 12000 (PostgreSQL's timestamptz reaches 4713 BC), and falls back beyond it.
    @Test func civilDatesAgreeWithHinnantsForm() {
        var days: [ClosedRange<Int64>] = [-2_546_000 ... 3_700_000, -12_000_010 ... -11_999_990, 99_999_990 ... 100_000_010]
        days.append(Int64.min / 86_400_000 - 1 ... Int64.min / 86_400_000 + 1)
        days.append(Int64.max / 86_400_000 - 1 ... Int64.max / 86_400_000 + 1)
        var mismatches = 0
        for range in days {
            for day in range where Timestamp.civil(fromDays: day) != Timestamp.hinnantCivil(fromDays: day) { mismatches += 1 }
        }
        #expect(mismatches == 0)
        #expect(Timestamp.civil(fromDays: 0) == (1970, 1, 1))
        #expect(Timestamp.civil(fromDays: 11_016) == (2000, 2, 29))
        #expect(Timestamp.civil(fromDays: -719_468) == (0, 3, 1))
    }

    @Test func digitPairsOfEveryValueBelow100() {
        for value in 0..<100 {
            let word = Timestamp.digitPair(UInt64(value))
            let text = String(decoding: [UInt8(word & 0xFF), UInt8(word >> 8 & 0xFF)], as: UTF8.self)
            #expect(text == (value < 10 ? "0\(value)" : "\(value)"))
            #expect(word >> 16 == 0)
        }
    }

    /// Before year 1 (PostgreSQL's `-infinity` reads as a huge negative count): still 24 bytes of
    /// digits and separators, so the JSON around them stays valid.
    @Test func timestampsBeforeYear1AreStillDigits() {
        for milliseconds: Int64 in [-62_135_596_800_001, -62_167_219_200_000, -100_000_000_000_000, Int64.min / 1000 + 1] {
            var json = JSONWriter()
            Timestamp.format(milliseconds: milliseconds, into: &json)
            let text = Array(json.bytes.dropFirst().dropLast())
            #expect(text.count == 24)
            let shape = Array("dddd-dd-ddTdd:dd:dd.dddZ".utf8)
            for (byte, wanted) in zip(text, shape) {
                if wanted == UInt8(ascii: "d") {
                    #expect(byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"), "\(milliseconds): \(String(decoding: text, as: UTF8.self))")
                } else {
                    #expect(byte == wanted, "\(milliseconds): \(String(decoding: text, as: UTF8.self))")
                }
            }
        }
    }

    @Test func formatsLikeGmtimeFromYear1To9999() {
        // -62135596800000 is 0001-01-01T00:00:00Z, 253402300799999 is 9999-12-31T23:59:59.999Z.
        var samples: [Int64] = [0, -1, 1, 86_399_999, 86_400_000, 951_782_400_000, -62_135_596_800_000, 253_402_300_799_999, 1_767_225_599_999]
        var state: UInt64 = 5
        for _ in 0..<20_000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            samples.append(-62_135_596_800_000 + Int64((state >> 1) % UInt64(253_402_300_799_999 + 62_135_596_800_000)))
        }
        for ms in samples {
            let text = Timestamp.rfc3339(milliseconds: ms)
            #expect(text == Self.reference(ms), "\(ms)")
            #expect(Timestamp.parseRFC3339(text) == ms, "\(text)")
        }
    }
}
