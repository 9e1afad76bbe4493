import Glibc

/// A whole (small) file read at start-up: rules files, the OpenAPI document, test fixtures.
/// Never on an event loop: it blocks.
public enum FileBytes {
    /// Nil when the file cannot be opened; reading stops at `limit` bytes.
    public static func read(_ path: String, limit: Int = 16 << 20) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while bytes.count < limit {
            let n = fread(&chunk, 1, min(chunk.count, limit - bytes.count), file)
            if n == 0 { break }
            bytes += chunk[0..<n]
        }
        return bytes
    }
}
