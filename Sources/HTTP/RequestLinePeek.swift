/// The method and path of a request line, read for the access line of a request the parser
/// refused after its request line (a 413 by Content-Length, a 431, an invalid Host): without it,
/// such a line said `"- - 413"`. Nil when the request line itself is not readable.
enum RequestLinePeek {
    /// Longest path kept for the log (the access log cuts long values again).
    static let maxPathBytes = 1024

    static func methodAndPath(_ bytes: UnsafeRawBufferPointer) -> (method: HTTPMethod, path: Substring)? {
        var start = 0
        // One empty line may precede the request line (RFC 9112 §2.2).
        if bytes.count >= 2 && bytes[0] == ASCII.cr && bytes[1] == UInt8(ascii: "\n") { start = 2 }
        guard let firstSpace = bytes[start...].firstIndex(of: ASCII.space), firstSpace > start else { return nil }
        for b in bytes[start..<firstSpace] where !ASCII.isToken(b) { return nil }
        var end = firstSpace + 1
        while end < bytes.count, end - firstSpace <= maxPathBytes, bytes[end] > 0x20, bytes[end] < 0x7F,
              bytes[end] != UInt8(ascii: "?") {
            end += 1
        }
        guard end > firstSpace + 1 else { return nil }
        let method = HTTPMethod(bytes: UnsafeRawBufferPointer(rebasing: bytes[start..<firstSpace]))
        let path = String(decoding: bytes[(firstSpace + 1)..<end], as: UTF8.self)
        return (method, path[...])
    }
}
