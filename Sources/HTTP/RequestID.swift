import Synchronization
import Net

/// The id that ties a request's response, logs and errors together: a well-formed incoming
/// `X-Request-ID` (≤ 128 of `[A-Za-z0-9._:-]`, what the ALB and most proxies pass) or a new one.
public enum RequestID {
    /// Random per process (16 hex digits) plus a counter: unique across tasks without a random
    /// number per request.
    private static let prefix: String = {
        let value = UInt64.random(in: 0...UInt64.max)
        return ASCIIDigits.hex(value, width: 16)
    }()
    private static let counter = Atomic<UInt64>(0)

    /// The request's id: its own `X-Request-ID` when well-formed, else a new one.
    static func of(_ head: HTTPRequestHead) -> String {
        if let given = head.fields["X-Request-ID"], isWellFormed(given) { return given }
        return make()
    }

    /// Written into the string's storage (prefix, dash, decimal counter): the interpolation it
    /// replaced went through the generic integer description, 1 % of a `GET /todos/{id}`.
    static func make() -> String {
        let number = counter.add(1, ordering: .relaxed).newValue
        var digits = 1
        var rest = number / 10
        while rest > 0 { digits += 1; rest /= 10 }
        var prefix = prefix
        return prefix.withUTF8 { head in
            String(unsafeUninitializedCapacity: head.count + 1 + digits) { out in
                _ = out.initialize(from: head)
                out[head.count] = UInt8(ascii: "-")
                var n = number
                for i in stride(from: head.count + digits, to: head.count, by: -1) {
                    out[i] = UInt8(ascii: "0") + UInt8(n % 10)
                    n /= 10
                }
                return head.count + 1 + digits
            }
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
