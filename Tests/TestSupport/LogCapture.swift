import Logging
import Synchronization

/// A swift-log handler that keeps every line (level and message) for a test to count.
public final class LogCapture: Sendable {
    public struct Line: Sendable {
        public let level: Logger.Level
        public let message: String
        public let metadata: [String: String]
    }

    private let lines = Mutex<[Line]>([])

    public init() {}

    public var all: [Line] { lines.withLock { $0 } }

    public func logger(label: String = "database") -> Logger {
        Logger(label: label) { _ in Handler(capture: self) }
    }

    fileprivate func append(_ line: Line) { lines.withLock { $0.append(line) } }

    private struct Handler: LogHandler {
        let capture: LogCapture
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            var fields: [String: String] = [:]
            for (key, value) in event.metadata ?? [:] { fields[key] = "\(value)" }
            capture.append(Line(level: event.level, message: event.message.description, metadata: fields))
        }
    }
}
