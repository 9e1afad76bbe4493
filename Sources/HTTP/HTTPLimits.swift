/// Input limits enforced by the parser itself.
///
/// The ALB forwards request lines up to 16 KiB and header sections up to 64 KiB; we are stricter
/// (8 KiB / 32 KiB / 100 fields, nginx's and Apache's order of magnitude): nothing this API
/// legitimately receives comes close, and smaller limits bound the memory a client can pin with an
/// unfinished head.
public struct HTTPLimits: Sendable, Equatable {
    /// Longest request line (method, target, version), excluding CRLF. Over it: 414.
    public var maxRequestLineBytes = 8 * 1024
    /// Largest head (request line + fields + CRLFs). Over it: 431.
    public var maxHeaderBytes = 32 * 1024
    /// Longest single field line (name, colon, value). Over it: 431. 16 KiB is the ALB's own
    /// per-field limit: a longer field never comes from the ALB, and the request filter's size
    /// rules must not see one first (they would answer 403, as if it were an attack).
    public var maxFieldLineBytes = 16 * 1024
    /// Most header fields. Over it: 431.
    public var maxHeaderFields = 100
    /// Largest body, by Content-Length or by the sum of chunks. Over it: 413, naming the limit.
    /// 32 KiB: a todo (200 + 2,000 characters) fits even with every character `\u`-escaped, and
    /// the request filter inspects all of it (a larger default would let bodies through that the
    /// filter only sizes, never reads).
    public var maxBodyBytes = 32 * 1024
    /// Longest chunk-size line with extensions (RFC 9112 §7.1.1 sets no limit; 4 KiB is generous).
    public var maxChunkLineBytes = 4 * 1024

    public init() {}
}
