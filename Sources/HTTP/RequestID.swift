import Synchronization

/// The id that ties a request's response, logs and errors together: a well-formed incoming
/// `X-Request-ID` (≤ 128 of `[A-Za-z0-9._:-]`, what the ALB and most proxies pass) or a new one.
public enum RequestID {
    /// Random per process (16 hex digits) plus a counter: unique across tasks without a random
    /// number per request.
    private static let prefix: String = {
        let value = UInt64.random(in: 0...UInt64.max)
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
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
        var number = counter.add(1, ordering: .relaxed).newValue
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for UInt64.max's 20 digits
        let count = withUnsafeMutableBytes(of: &digits) { buffer -> Int in
            var i = buffer.count
            repeat {
                i -= 1
                buffer[i] = UInt8(ascii: "0") + UInt8(number % 10)
                number /= 10
            } while number > 0
            return buffer.count - i
        }
        var prefix = prefix
        return prefix.withUTF8 { head in
            String(unsafeUninitializedCapacity: head.count + 1 + count) { out in
                _ = out.initialize(from: head)
                out[head.count] = UInt8(ascii: "-")
                withUnsafeBytes(of: &digits) { buffer in
                    for k in 0..<count { out[head.count + 1 + k] = buffer[buffer.count - count + k] }
                }
                return head.count + 1 + count
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
