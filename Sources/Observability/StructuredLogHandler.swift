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
    /// about 6 % of a POST's CPU (perf). `fields` adds them in key order, as `log(event:)` would
    /// write them; a nil value is left out. The same line as `Logger.info(message, metadata:)` gives.
    /// A closure that appends, not a list of pairs: a `KeyValuePairs` literal was an array of
    /// tuples to allocate and to destroy through the runtime's generic path (~1.3k instructions
    /// a `POST`, callgrind).
    public func write(_ level: Logger.Level, _ message: StaticString, fields: (inout LogFields) -> Void) {
        guard level >= logLevel else { return }
        // The message and the keys are written as they are: literals of our own, with nothing
        // JSON would escape (`LogFields.add` asserts it of each key).
        assert(message.withUTF8Buffer { !$0.contains { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C } })
        guard format == .json else {
            var collected = LogFields(json: JSONWriter(capacity: 16), metadata: [:])
            fields(&collected)
            return sink.write(LogLine.render(format: format, timestamp: Timestamp.nowMilliseconds(), level: level, service: service,
                                             component: component, message: message.description, metadata: collected.metadata ?? [:]))
        }
        var collected = LogFields(json: LineScratch.take(), metadata: nil)
        LogLine.writeStart(to: &collected.json, heads: heads, level: level)
        collected.json.raw(message)
        collected.json.raw("\"")
        fields(&collected)
        collected.json.raw("}")
        collected.json.withUnsafeBytes { sink.write($0) }
        LineScratch.give(collected.json)
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

/// The fields of one line of `StructuredLogHandler.write(_:_:fields:)`, added in key order.
public struct LogFields {
    var json: JSONWriter
    /// Collected instead, for the text format.
    var metadata: Logger.Metadata?

    init(json: JSONWriter, metadata: Logger.Metadata?) {
        self.json = json
        self.metadata = metadata
    }

    /// `,"key":"value"` (the value escaped and cut as every log value is); nil leaves it out.
    public mutating func add(_ key: StaticString, _ value: String?) {
        guard let value else { return }
        assert(key.withUTF8Buffer { !$0.contains { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C } })
        if metadata != nil {
            metadata![key.description] = .string(value)
            return
        }
        json.raw(",\"")
        json.raw(key)
        json.raw("\":")
        json.string(LogLine.cut(value, LogLine.maxValueBytes))
    }
}
