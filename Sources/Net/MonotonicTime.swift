import Glibc

/// Nanoseconds on CLOCK_MONOTONIC: deadlines must not move when the wall clock is stepped (NTP, VM resume).
public struct MonotonicTime: Comparable, Hashable, Sendable {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public static func now() -> MonotonicTime {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return MonotonicTime(nanoseconds: Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec))
    }

    public static let distantFuture = MonotonicTime(nanoseconds: .max)

    public static func < (a: MonotonicTime, b: MonotonicTime) -> Bool { a.nanoseconds < b.nanoseconds }

    public static func + (t: MonotonicTime, d: TimeSpan) -> MonotonicTime {
        let (sum, overflow) = t.nanoseconds.addingReportingOverflow(d.nanoseconds)
        return MonotonicTime(nanoseconds: overflow ? .max : sum)
    }

    public static func - (a: MonotonicTime, b: MonotonicTime) -> TimeSpan {
        TimeSpan(nanoseconds: a.nanoseconds - b.nanoseconds)
    }
}

/// A duration in nanoseconds; parsed from configuration strings such as `75s`, `500ms`, `2m`.
public struct TimeSpan: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }
    public static func milliseconds(_ ms: Int64) -> TimeSpan { TimeSpan(nanoseconds: ms * 1_000_000) }
    public static func seconds(_ s: Int64) -> TimeSpan { TimeSpan(nanoseconds: s * 1_000_000_000) }

    public static func < (a: TimeSpan, b: TimeSpan) -> Bool { a.nanoseconds < b.nanoseconds }

    public var milliseconds: Int64 { nanoseconds / 1_000_000 }
    public var seconds: Double { Double(nanoseconds) / 1e9 }

    public var description: String {
        if nanoseconds % 1_000_000_000 == 0 { return "\(nanoseconds / 1_000_000_000)s" }
        return "\(nanoseconds / 1_000_000)ms"
    }

    /// Parses `<number><unit>` with unit `ms`, `s`, `m` or `h`; a bare number means seconds.
    /// Returns nil for anything else, negative or absurdly large values.
    public init?(parsing text: String) {
        let units: [(String, Int64)] = [("ms", 1_000_000), ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000)]
        var digits = Substring(text)
        var scale: Int64 = 1_000_000_000
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            let candidate = text.dropLast(suffix.count)
            if !candidate.isEmpty, candidate.allSatisfy({ $0.isASCII && $0.isNumber }) {
                digits = candidate
                scale = factor
                break
            }
        }
        guard !digits.isEmpty, digits.count <= 9, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
              let value = Int64(digits) else { return nil }
        // 999,999,999 h does not fit in 64-bit nanoseconds (292 years do): refused, not a trap.
        let (nanoseconds, overflow) = value.multipliedReportingOverflow(by: scale)
        guard !overflow else { return nil }
        self.nanoseconds = nanoseconds
    }
}
