/// One rule that matched, for the security event and the counters.
public struct WAFMatch: Sendable {
    public let rule: WAFRule
    public let action: WAFAction
    /// Where: `path`, `query:q`, `header:user-agent`, `cookie:session`, `body:$.title`, `method`.
    public let location: String
    /// Why the detector matched (a fingerprint reason, not shown to the client).
    public let reason: String
    /// The inspected value (normalized), truncated for the log.
    public let excerpt: String

    static func excerpt(_ bytes: [UInt8]) -> String {
        let cut = bytes.count > 120 ? Array(bytes[0..<120]) + Array("…".utf8) : bytes
        return String(decoding: cut, as: UTF8.self)
    }
}
