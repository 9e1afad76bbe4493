/// Timestamps as Unix milliseconds, written and read as RFC 3339 without Foundation (the
/// architecture note measured Foundation's ISO-8601 formatting as a large share of a list request).
/// Civil-date conversions after Howard Hinnant's `days_from_civil` / `civil_from_days`, and Neri and
/// Schneider's faster form of the latter (`civil(fromDays:)`).
public enum Timestamp {
    /// `2026-11-23T19:25:49.760Z`: UTC, always three fraction digits.
    public static func format(milliseconds: Int64, into writer: inout JSONWriter) {
        writer.append(UInt8(ascii: "\""))
        withUnsafeBytes(of: rfc3339Words(milliseconds)) { writer.raw(bytes: $0) }
        writer.append(UInt8(ascii: "\""))
    }

    public static func rfc3339(milliseconds: Int64) -> String {
        var bytes: [UInt8] = []
        appendRFC3339(milliseconds, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `2026-01-02T03:04:05.678Z`: the 24 bytes are composed in three 64-bit words and appended
    /// at once. Straight-line code: the digit loop over a stack buffer it replaces cost ~600
    /// instructions a timestamp (callgrind), and a request writes three or four (a todo's
    /// `createdAt` and `updatedAt`, the access line's, an event line's; 40 for a list of 20).
    public static func appendRFC3339(_ milliseconds: Int64, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: rfc3339Words(milliseconds)) { bytes.append(contentsOf: $0) }
    }

    /// The 24 bytes of `appendRFC3339`, as three little-endian words in memory order.
    /// Two digits at a time (`digitPair`): a division by 10 and a remainder for each of the 17
    /// digits were ~290 instructions a timestamp (callgrind; a list page writes 40).
    @inline(__always)
    static func rfc3339Words(_ milliseconds: Int64) -> (UInt64, UInt64, UInt64) {
        let (days, msOfDay) = milliseconds.floorDivided(by: 86_400_000)
        let (year, month, day) = civil(fromDays: days)
        // Years before 1 (a database `-infinity`, a BC date) have a negative remainder; made
        // positive, every lane below stays a digit (`digitPair` takes 0...99 only).
        let y = UInt64(truncatingIfNeeded: (year % 10000 + 10000) % 10000)
        let m = UInt64(truncatingIfNeeded: month), d = UInt64(truncatingIfNeeded: day)
        let t = UInt64(truncatingIfNeeded: msOfDay)
        let secondOfDay = t / 1000, milli = t - secondOfDay * 1000
        let hour = secondOfDay / 3600, secondOfHour = secondOfDay - hour * 3600
        let minute = secondOfHour / 60, second = secondOfHour - minute * 60
        let century = y / 100, centi = milli / 10
        @inline(__always) func byte(_ ascii: Unicode.Scalar, _ index: UInt64) -> UInt64 { UInt64(ascii.value) << (index * 8) }
        let first = digitPair(century) | digitPair(y - century * 100) << 16 | byte("-", 4) | digitPair(m) << 40 | byte("-", 7)
        let second8 = digitPair(d) | byte("T", 2) | digitPair(hour) << 24 | byte(":", 5) | digitPair(minute) << 48
        let third = byte(":", 0) | digitPair(second) << 8 | byte(".", 3) | digitPair(centi) << 32
            | (0x30 | (milli - centi * 10)) << 48 | byte("Z", 7)
        return (first.littleEndian, second8.littleEndian, third.littleEndian)
    }

    /// The two ASCII digits of `value` (0...99), tens first in memory: a 16-bit little-endian word.
    /// `value * 103 >> 10` is `value / 10` for every value below 100 (`TimestampTests` checks all).
    @inline(__always)
    static func digitPair(_ value: UInt64) -> UInt64 {
        let tens = (value &* 103) >> 10
        return (0x30 | tens) | (0x30 | (value &- tens &* 10)) << 8
    }

    /// RFC 3339 `date-time` (`2026-01-02T03:04:05Z`, `...05.678+09:00`; `t`/`z` and a space
    /// separator accepted) → Unix milliseconds; nil if malformed or out of range (years 1–9999).
    public static func parseRFC3339(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        guard b.count >= 20 else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for i in range {
                guard b[i] >= UInt8(ascii: "0") && b[i] <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int64(b[i] - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0..<4), b[4] == UInt8(ascii: "-"), let month = number(5..<7), b[7] == UInt8(ascii: "-"),
              let day = number(8..<10), b[10] | 0x20 == UInt8(ascii: "t") || b[10] == UInt8(ascii: " "),
              let hour = number(11..<13), b[13] == UInt8(ascii: ":"), let minute = number(14..<16), b[16] == UInt8(ascii: ":"),
              let second = number(17..<19) else { return nil }
        guard year >= 1, (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
              hour < 24, minute < 60, second < 61 else { return nil }
        var index = 19
        var millis: Int64 = 0
        if index < b.count, b[index] == UInt8(ascii: ".") {
            index += 1
            let start = index
            while index < b.count, b[index] >= UInt8(ascii: "0") && b[index] <= UInt8(ascii: "9") { index += 1 }
            guard index > start, index - start <= 9 else { return nil }
            // Milliseconds: the first three digits; finer digits are truncated.
            for i in 0..<3 { millis = millis * 10 + (start + i < index ? Int64(b[start + i] - UInt8(ascii: "0")) : 0) }
        }
        guard index < b.count else { return nil }
        var offsetMinutes: Int64 = 0
        if b[index] | 0x20 == UInt8(ascii: "z") {
            index += 1
        } else if b[index] == UInt8(ascii: "+") || b[index] == UInt8(ascii: "-") {
            guard index + 6 == b.count, let oh = number((index + 1)..<(index + 3)), b[index + 3] == UInt8(ascii: ":"),
                  let om = number((index + 4)..<(index + 6)), oh < 24, om < 60 else { return nil }
            offsetMinutes = (oh * 60 + om) * (b[index] == UInt8(ascii: "-") ? -1 : 1)
            index += 6
        } else {
            return nil
        }
        guard index == b.count else { return nil }
        let days = days(fromCivil: year, month, day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + min(second, 59) - offsetMinutes * 60
        return seconds * 1000 + millis
    }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
    /// Neri and Schneider's Euclidean affine form ("Euclidean affine functions and their
    /// application to calendar algorithms", 2022): unsigned multiplications and shifts only, ~30
    /// instructions against ~100 for `hinnantCivil` (callgrind: 4 per `PUT`, 40 per list page).
    /// The shift by `eras` eras makes every day from year -32,000 on non-negative (no overflow up
    /// to the guard's upper end); days outside the guard take Hinnant's form. `TimestampTests`
    /// compares both forms on every day of years -5000 to 12000 and around both ends of the guard.
    @inline(__always)
    static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        guard days >= -12_000_000 && days <= 100_000_000 else { return hinnantCivil(fromDays: days) }
        let eras: UInt64 = 82
        let n = UInt64(days + 719_468 + 146_097 * Int64(eras))
        // Century and day of the century.
        let n1 = 4 &* n &+ 3
        let century = n1 / 146_097
        let dayOfCentury = n1 % 146_097 / 4
        // Year of the century and day of the (March-based) year.
        let n2 = 4 &* dayOfCentury &+ 3
        let p2 = 2_939_745 &* n2
        let yearOfCentury = p2 >> 32
        let dayOfYear = (p2 & 0xFFFF_FFFF) / 2_939_745 / 4
        // Month and day, March = 3 … February = 14.
        let n3 = 2141 &* dayOfYear &+ 197_913
        let month = n3 >> 16
        let day = (n3 & 0xFFFF) / 2141 + 1
        let january = dayOfYear >= 306 ? UInt64(1) : 0
        let year = Int64(100 &* century &+ yearOfCentury &+ january) - Int64(400 * eras)
        return (year, Int64(january == 1 ? month - 12 : month), Int64(day))
    }

    static func hinnantCivil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

extension Int64 {
    /// Floor division: (-1).floorDivided(by: 1000) is (-1, 999), not (0, -1).
    public func floorDivided(by divisor: Int64) -> (quotient: Int64, remainder: Int64) {
        var q = self / divisor
        var r = self % divisor
        if r < 0 { q -= 1; r += divisor }
        return (q, r)
    }
}

import Glibc

extension Timestamp {
    /// Now, in Unix milliseconds (wall clock: for log lines, not for deadlines).
    public static func nowMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}
