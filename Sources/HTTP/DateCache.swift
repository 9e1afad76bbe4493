import Glibc

/// The `Date` header value (IMF-fixdate, RFC 9110 §5.6.7), rendered at most once a second.
/// One per loop: loop-owned, never shared.
public struct DateCache {
    private var second: time_t = -1
    /// "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
    public private(set) var headerLine: [UInt8] = []

    public init() {}

    public mutating func refresh() {
        let now = time(nil)
        guard now != second else { return }
        second = now
        headerLine = Array("Date: \(Self.imfFixdate(now))\r\n".utf8)
    }

    static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    public static func imfFixdate(_ seconds: time_t) -> String {
        var t = seconds
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
