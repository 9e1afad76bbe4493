import Glibc

/// The one whole-file reader: rules files, migrations, the OpenAPI document, cgroup and /proc
/// files, test fixtures. Blocks: at start-up, or for /proc and /sys files (served from memory).
public enum FileBytes {
    /// The file's bytes, up to `limit`; nil when it cannot be opened or read.
    public static func read(_ path: String, limit: Int = 16 << 20) -> [UInt8]? {
        try? contents(path, limit: limit)
    }

    /// The file's bytes, up to `limit`; the error names the path and the reason (strerror).
    public static func contents(_ path: String, limit: Int = 16 << 20) throws(FileReadError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileReadError(path: path, errno: errno) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: min(65536, max(limit, 1)))
        while bytes.count < limit {
            let n = Glibc.read(fd, &chunk, min(chunk.count, limit - bytes.count))
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw FileReadError(path: path, errno: errno) }
            if n == 0 { break }
            bytes += chunk[0..<n]
        }
        return bytes
    }

    /// A small text file (cgroup limits, /proc entries) as a String.
    public static func text(_ path: String, limit: Int = 4096) -> String? {
        read(path, limit: limit).map { String(decoding: $0, as: UTF8.self) }
    }
}

public struct FileReadError: Error, CustomStringConvertible {
    public let path: String
    public let errno: Int32
    public var description: String { "cannot read \(path): \(String(cString: strerror(errno)))" }
}
