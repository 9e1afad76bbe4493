import Logging

/// How a log line looks: one JSON object (for Fluent Bit and CloudWatch, which route and count on
/// the top-level upper-case `level`) or a line of text for a person at a terminal.
public enum LogFormat: String, Sendable {
    case json, text
}

/// Renders log lines. Schema (docs/LOGGING.md): `timestamp` (RFC 3339 UTC, ms), `level`,
/// `service`, `component`, `message`, then metadata as top-level keys (nested values as JSON
/// objects/arrays; an error as `error: {"type","message"}`).
public enum LogLine {
    /// FireLens splits longer lines into fragments that are no longer JSON.
    public static let maxBytes = 16 * 1024
    /// A single value longer than this is cut, with `truncatedMarker` appended.
    public static let maxValueBytes = 4 * 1024
    public static let truncatedMarker = "…[truncated]"
    /// Fields every line has: metadata may not overwrite them. A constant, not an array literal
    /// built for every key of every line.
    static let reservedKeys: Set<String> = ["timestamp", "level", "service", "component", "message"]

    public static func levelName(_ level: Logger.Level) -> StaticString {
        switch level {
        case .trace: "TRACE"
        case .debug: "DEBUG"
        case .info, .notice: "INFO"
        case .warning: "WARN"
        case .error: "ERROR"
        case .critical: "CRITICAL"
        }
    }

    public static func render(format: LogFormat, timestamp: Int64, level: Logger.Level, service: String, component: String,
                              message: String, metadata: Logger.Metadata) -> [UInt8] {
        var line = renderOnce(format: format, timestamp: timestamp, level: level, service: service, component: component,
                              message: message, metadata: metadata, valueLimit: maxValueBytes)
        if line.count > maxBytes {
            line = renderOnce(format: format, timestamp: timestamp, level: level, service: service, component: component,
                              message: message, metadata: metadata, valueLimit: 256)
        }
        if line.count > maxBytes {
            // Still too long (very many keys): the essentials only.
            line = renderOnce(format: format, timestamp: timestamp, level: level, service: service, component: component,
                              message: message, metadata: ["truncated": "true"], valueLimit: 1024)
        }
        return line
    }

    static func renderOnce(format: LogFormat, timestamp: Int64, level: Logger.Level, service: String, component: String,
                           message: String, metadata: Logger.Metadata, valueLimit: Int) -> [UInt8] {
        switch format {
        case .json:
            var json = JSONWriter(capacity: 256)
            writeHead(to: &json, timestamp: timestamp, level: level, service: service, component: component, limit: valueLimit)
            json.raw(",\"message\":")
            json.string(cut(message, valueLimit))
            for (key, value) in metadata.sorted(by: { $0.key < $1.key }) where !reservedKeys.contains(key) {
                json.raw(",")
                json.string(cut(key, 128))
                json.raw(":")
                write(value, to: &json, limit: valueLimit)
            }
            json.raw("}")
            return json.take()
        case .text:
            var text = Timestamp.rfc3339(milliseconds: timestamp) + " " + levelName(level).description + " [" + component + "] " + cut(message, valueLimit)
            for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
                text += " \(key)=\(cut(value.description, valueLimit))"
            }
            // One line per entry: a newline in a value would forge a second entry. By bytes, not
            // Characters: "\r\n" is one Character, equal to neither "\n" nor "\r".
            return Array(text.utf8).map { $0 == 0x0A || $0 == 0x0D ? 0x20 : $0 }
        }
    }

    /// The levels in the order of `messageHeads`' entries.
    static let levels: [Logger.Level] = [.trace, .debug, .info, .notice, .warning, .error, .critical]

    /// `level`'s place in `levels` (a switch: `allCases` builds an array on every use).
    static func levelIndex(_ level: Logger.Level) -> Int {
        switch level {
        case .trace: 0
        case .debug: 1
        case .info: 2
        case .notice: 3
        case .warning: 4
        case .error: 5
        case .critical: 6
        }
    }

    /// Per level (`levels` order), what follows the timestamp up to the message's opening quote:
    /// `,"level":"INFO","service":"todo-api","component":"access","message":"`. Rendered once
    /// for lines written once per request (access lines, business events): writing it field by
    /// field (two escaped strings, six appends) was ~1,000 instructions a line (callgrind).
    static func messageHeads(service: String, component: String) -> [[UInt8]] {
        levels.map { level in
            var json = JSONWriter(capacity: 128)
            writeHead(to: &json, timestamp: 0, level: level, service: service, component: component)
            // Everything after `{"timestamp":"…"`, which each line writes itself.
            var start = JSONWriter(capacity: 64)
            start.raw("{\"timestamp\":")
            Timestamp.format(milliseconds: 0, into: &start)
            precondition(json.bytes.starts(with: start.bytes))
            return Array(json.bytes.dropFirst(start.bytes.count)) + Array(",\"message\":\"".utf8)
        }
    }

    /// `{"timestamp":"<now>"` and `level`'s entry of `heads` (`messageHeads`): a line up to its
    /// message's opening quote.
    static func writeStart(to json: inout JSONWriter, heads: [[UInt8]], level: Logger.Level) {
        json.raw("{\"timestamp\":")
        Timestamp.format(milliseconds: Timestamp.nowMilliseconds(), into: &json)
        heads[levelIndex(level)].withUnsafeBytes { json.raw(bytes: $0) }
    }

    /// `{"timestamp":…,"level":…,"service":…,"component":…`: how every JSON line begins.
    static func writeHead(to json: inout JSONWriter, timestamp: Int64, level: Logger.Level, service: String, component: String,
                          limit: Int = maxValueBytes) {
        json.raw("{\"timestamp\":")
        Timestamp.format(milliseconds: timestamp, into: &json)
        json.raw(",\"level\":\"")
        json.raw(levelName(level))
        json.raw("\",\"service\":")
        json.string(cut(service, limit))
        json.raw(",\"component\":")
        json.string(cut(component, limit))
    }

    static func write(_ value: Logger.MetadataValue, to json: inout JSONWriter, limit: Int) {
        switch value {
        case .string(let text): json.string(cut(text, limit))
        case .stringConvertible(let convertible):
            // Numbers stay numbers, so log queries can compare them (`$.status >= 500`).
            if let integer = convertible as? Int { json.integer(integer) } else { json.string(cut(convertible.description, limit)) }
        case .array(let values):
            json.raw("[")
            for (i, element) in values.enumerated() {
                if i > 0 { json.raw(",") }
                write(element, to: &json, limit: limit)
            }
            json.raw("]")
        case .dictionary(let members):
            json.raw("{")
            for (i, (key, element)) in members.sorted(by: { $0.key < $1.key }).enumerated() {
                if i > 0 { json.raw(",") }
                json.string(cut(key, 128))
                json.raw(":")
                write(element, to: &json, limit: limit)
            }
            json.raw("}")
        }
    }

    /// At most `limit` UTF-8 bytes, cut on a character boundary, marked when cut.
    static func cut(_ text: String, _ limit: Int) -> String {
        guard text.utf8.count > limit else { return text }
        var kept = ""
        var bytes = 0
        for scalar in text.unicodeScalars {
            let size = String(scalar).utf8.count
            if bytes + size > limit { break }
            kept.unicodeScalars.append(scalar)
            bytes += size
        }
        return kept + truncatedMarker
    }
}

extension Logger.MetadataValue {
    /// `error: {"type": "...", "message": "..."}` as the log schema wants it.
    public static func error(_ error: any Error) -> Logger.MetadataValue {
        .dictionary(["type": .string(String(describing: type(of: error))), "message": .string(String(describing: error))])
    }
}
