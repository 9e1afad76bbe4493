import Observability

/// Wall-clock times as SigV4 and the AWS APIs write them.
public enum AWSTime {
    /// `20261205T224830Z` (SigV4's X-Amz-Date, ISO 8601 basic format, UTC).
    public static func amzDate(epochSeconds: Int64) -> String {
        // "2026-12-05T22:48:30.000Z" without its separators and fraction.
        let extended = Timestamp.rfc3339(milliseconds: epochSeconds * 1000)
        return String(extended.prefix(19).filter { $0 != "-" && $0 != ":" }) + "Z"
    }

    /// `2026-12-05T22:48:30Z` (the container endpoint's `Expiration`; fractions and offsets
    /// accepted) as Unix seconds.
    public static func parse(_ text: String) -> Int64? {
        Timestamp.parseRFC3339(text).map { $0 / 1000 }
    }

    /// Now, Unix seconds.
    public static func now() -> Int64 { Timestamp.nowMilliseconds() / 1000 }
}
