import Synchronization
import Net

/// The id that ties a request's response, logs and errors together: a well-formed incoming
/// `X-Request-ID` (≤ 128 of `[A-Za-z0-9._:-]`, what the ALB and most proxies pass) or a new one.
public enum RequestID {
    /// Random per process (9 base-36 digits, 46 bits) plus a dash and a base-36 counter: unique
    /// across tasks without a random number per request. The whole id stays within 15 bytes for
    /// the first 60 million requests of a process (5 counter digits), so Swift keeps it inline in
    /// the `String` (a small string): no allocation to make it, no reference counting on each of
    /// the copies a request makes of it (request, exchange record, responder, access line).
    /// The 16-hex-digit form it replaced was one allocation per request and one retain and
    /// release per copy (perf, `GET /health`).
    static let prefixLength = 9
    private static let prefix: [UInt8] = {
        var value = UInt64.random(in: 0...UInt64.max)
        return (0..<prefixLength).map { _ in
            defer { value /= 36 }
            return digit(Int(value % 36))
        }
    }()
    private static let counter = Atomic<UInt64>(0)

    private static func digit(_ value: Int) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + UInt8(value) : UInt8(ascii: "a") + UInt8(value - 10)
    }

    /// The request's id: its own `X-Request-ID` when well-formed, else a new one.
    static func of(_ head: HTTPRequestHead) -> String {
        if let given = head.fields[.requestID], isWellFormed(given) { return given }
        return make()
    }

    /// Written into the string's storage (prefix, dash, counter): the interpolation it replaced
    /// went through the generic integer description, 1 % of a `GET /todos/{id}`.
    static func make() -> String {
        let number = counter.add(1, ordering: .relaxed).newValue
        var digits = 1
        var rest = number / 36
        while rest > 0 { digits += 1; rest /= 36 }
        let length = prefixLength + 1 + digits
        return String(unsafeUninitializedCapacity: length) { out in
            for i in 0..<prefixLength { out[i] = prefix[i] }
            out[prefixLength] = UInt8(ascii: "-")
            var n = number
            for i in stride(from: length - 1, to: prefixLength, by: -1) {
                out[i] = digit(Int(n % 36))
                n /= 36
            }
            return length
        }
    }

    public static func isWellFormed(_ text: String) -> Bool {
        let bytes = text.utf8
        guard !bytes.isEmpty, bytes.count <= 128 else { return false }
        return bytes.allSatisfy { b in
            (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
                || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: ".") || b == UInt8(ascii: "_")
                || b == UInt8(ascii: ":") || b == UInt8(ascii: "-")
        }
    }
}
