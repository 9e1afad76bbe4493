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
    /// Per level, the line's head after the timestamp (`LogLine.messageHeads`), for `write`.
    private let heads: [[UInt8]]

    public init(component: String, level: Logger.Level, service: String, format: LogFormat, sink: LogSink) {
        self.component = component
        self.logLevel = level
        self.service = service
        self.format = format
        self.sink = sink
        heads = LogLine.messageHeads(service: service, component: component)
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

    /// A line of string fields without a metadata dictionary, for lines written once per request
    /// (business events): the dictionary, its hashing and the sorted copy `log(event:)` makes were
    /// about 6 % of a POST's CPU (perf). `fields` in key order, as `log(event:)` would write them;
    /// a nil value is left out. The same line as `Logger.info(message, metadata:)` gives.
    public func write(_ level: Logger.Level, _ message: StaticString, fields: KeyValuePairs<StaticString, String?>) {
        guard level >= logLevel else { return }
        // The message and the keys are written as they are: literals of our own, with nothing
        // JSON would escape.
        assert(([message] + fields.map(\.key)).allSatisfy { $0.withUTF8Buffer { !$0.contains { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C } } })
        guard format == .json else {
            var metadata: Logger.Metadata = [:]
            for (key, value) in fields { if let value { metadata[key.description] = .string(value) } }
            return sink.write(LogLine.render(format: format, timestamp: Timestamp.nowMilliseconds(), level: level, service: service,
                                             component: component, message: message.description, metadata: metadata))
        }
        var json = JSONWriter(capacity: 256)
        LogLine.writeStart(to: &json, heads: heads, level: level)
        json.raw(message)
        json.raw("\"")
        for (key, value) in fields {
            guard let value else { continue }
            json.raw(",\"")
            json.raw(key)
            json.raw("\":")
            json.string(LogLine.cut(value, LogLine.maxValueBytes))
        }
        json.raw("}")
        json.withUnsafeBytes { sink.write($0) }
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
