import Glibc
import HTTP
import Logging
import Synchronization

/// Start-up, shutdown and error lines as one JSON object per line on stdout (the shape Fluent Bit
/// routes on: top-level upper-case `level`). Each line goes out in a single write(2) under a lock,
/// so lines never interleave.
///
/// Interim: the request path does not log yet; issue #5 replaces this with a bounded queue and a
/// writer thread so that a slow stdout can never stall a loop.
struct JSONLineLogHandler: LogHandler {
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    let label: String
    private static let writeLock = Mutex<Void>(())

    init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var line = "{\"timestamp\":\"\(Self.timestamp())\",\"level\":\"\(Self.levelName(event.level))\",\"service\":\"todo-api\",\"component\":"
        JSONString.append(label, to: &line)
        line += ",\"message\":"
        JSONString.append(event.message.description, to: &line)
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) {
            line += ","
            JSONString.append(key, to: &line)
            line += ":"
            JSONString.append(value.description, to: &line)
        }
        line += "}\n"
        Self.writeLock.withLock { _ in
            var bytes = Array(line.utf8)
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeMutableBytes { write(1, $0.baseAddress! + offset, $0.count - offset) }
                if n <= 0 { if n < 0 && errno == EINTR { continue }; break }
                offset += n
            }
            bytes.removeAll()
        }
    }

    static func levelName(_ level: Logger.Level) -> String {
        switch level {
        case .trace: "TRACE"
        case .debug: "DEBUG"
        case .info: "INFO"
        case .notice: "INFO"
        case .warning: "WARN"
        case .error: "ERROR"
        case .critical: "CRITICAL"
        }
    }

    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var parts = tm()
        var seconds = ts.tv_sec
        gmtime_r(&seconds, &parts)
        func pad(_ v: Int, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(Int(parts.tm_year) + 1900, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-\(pad(Int(parts.tm_mday), 2))T"
            + "\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):\(pad(Int(parts.tm_sec), 2)).\(pad(Int(ts.tv_nsec / 1_000_000), 3))Z"
    }

    static func level(named name: String) -> Logger.Level {
        switch name {
        case "trace": .trace
        case "debug": .debug
        case "warn", "warning": .warning
        case "error": .error
        case "critical": .critical
        default: .info
        }
    }
}
