import Logging

/// The service's swift-log handler: a value type over the shared `LogSink`. The label is the
/// `component` (`server`, `http`, `database`, `security`, `business`, ...). Lines below the level
/// cost nothing: swift-log does not even build their messages.
public struct StructuredLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public let component: String
    public let service: String
    public let format: LogFormat
    public let sink: LogSink

    public init(component: String, level: Logger.Level, service: String, format: LogFormat, sink: LogSink) {
        self.component = component
        self.logLevel = level
        self.service = service
        self.format = format
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        // The handler's own metadata is usually empty: then the event's is used as it is (merging
        // copied and rehashed a dictionary per line: business events are one per write).
        let merged: Logger.Metadata
        if metadata.isEmpty {
            merged = event.metadata ?? [:]
        } else if let extra = event.metadata {
            merged = metadata.merging(extra) { $1 }
        } else {
            merged = metadata
        }
        sink.write(LogLine.render(format: format, timestamp: Timestamp.nowMilliseconds(), level: event.level, service: service,
                                  component: component, message: event.message.description, metadata: merged))
    }

    /// Parses `LOG_LEVEL` values.
    public static func level(named name: String) -> Logger.Level? {
        switch name.lowercased() {
        case "trace": .trace
        case "debug": .debug
        case "info": .info
        case "warn", "warning": .warning
        case "error": .error
        case "critical": .critical
        default: nil
        }
    }
}
