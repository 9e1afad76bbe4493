/// The 36-byte text form of a UUID (8-4-4-4-12 hex digits, either case), checked with a byte-class
/// table in one branch-free loop: it runs twice per `GET /todos/{id}` (the filter's path shape,
/// the handler's id check), and per-byte range comparisons with position branches took 1.3 % of
/// the request in perf (now 0.2 %).
public enum UUIDSyntax {
    /// Per byte value: 1 for a hex digit, 2 for `-`, 0 for anything else.
    private static let classes: [UInt8] = (0..<256).map { b in
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66) ? 1 : (b == 0x2D ? 2 : 0)
    }
    /// What each of the 36 positions must be.
    private static let expected: [UInt8] = (0..<36).map { [8, 13, 18, 23].contains($0) ? 2 : 1 }

    public static func isValid(_ bytes: UnsafeBufferPointer<UInt8>, at start: Int = 0) -> Bool {
        guard start >= 0, start + 36 <= bytes.count else { return false }
        return classes.withUnsafeBufferPointer { classes in
            expected.withUnsafeBufferPointer { expected in
                var mismatch: UInt8 = 0
                for k in 0..<36 { mismatch |= classes[Int(bytes[start + k])] ^ expected[k] }
                return mismatch == 0
            }
        }
    }
}
