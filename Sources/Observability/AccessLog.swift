import Logging

/// What the HTTP layer reports about each exchange, after the response is written.
public struct AccessRecord: Sendable {
    public var method: String
    /// Without the query (query values may carry personal data). A slice of the request's target,
    /// not a string of its own: a path longer than 15 bytes (every `/todos/{id}`) made one
    /// allocation a request to build the line.
    public var path: Substring
    /// The route template (`/todos/:id`), or nil when no route matched.
    public var route: String?
    public var status: Int
    public var durationNanoseconds: Int64
    public var bytesIn: Int
    public var bytesOut: Int
    public var clientIP: String
    public var userAgent: String?
    /// The User-Agent as the request's bytes, when the caller has them (the HTTP layer): written
    /// straight into the line (`JSONWriter.string(utf8:)`), so the common request makes no string
    /// for it (one allocation a request otherwise). Used when `userAgent` is nil.
    public var userAgentBytes: ArraySlice<UInt8>?
    public var requestID: String
    /// The `Root=` part of the ALB's `X-Amzn-Trace-Id`.
    public var traceID: String?
    /// The authenticated caller (the owner of todos), when the service authenticated the request.
    public var userID: String?

    /// Inlinable: across the module boundary the call took every string, slice and array at +1
    /// (~530 instructions of retains and copies a request, callgrind).
    @inlinable
    public init(method: String, path: Substring, route: String?, status: Int, durationNanoseconds: Int64, bytesIn: Int,
                bytesOut: Int, clientIP: String, userAgent: String?, userAgentBytes: ArraySlice<UInt8>? = nil,
                requestID: String, traceID: String?, userID: String? = nil) {
        self.userID = userID
        self.userAgentBytes = userAgentBytes
        self.method = method
        self.path = path
        self.route = route
        self.status = status
        self.durationNanoseconds = durationNanoseconds
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
        self.clientIP = clientIP
        self.userAgent = userAgent
        self.requestID = requestID
        self.traceID = traceID
    }

    /// The User-Agent as text, whichever way it was given (invalid UTF-8 repaired).
    public var userAgentText: String? {
        userAgent ?? userAgentBytes.map { String(decoding: $0, as: UTF8.self) }
    }
}

/// One log line per exchange (component `access`): 5xx at ERROR (so Fluent Bit sends them to
/// CloudWatch), `GET /health` at DEBUG (the ALB calls it every 30 s per target), the rest INFO.
/// Lines below the configured level are not even rendered.
public struct AccessLog: Sendable {
    public let sink: LogSink
    public let level: Logger.Level
    public let service: String
    public let format: LogFormat

    /// Per level (`LogLine.levels` order), what follows the timestamp up to the message's
    /// opening quote (`LogLine.messageHeads`).
    private let heads: [[UInt8]]

    public init(sink: LogSink, level: Logger.Level, service: String, format: LogFormat) {
        self.sink = sink
        self.level = level
        self.service = service
        self.format = format
        heads = LogLine.messageHeads(service: service, component: "access")
    }

    public func level(of record: AccessRecord) -> Logger.Level {
        level(method: record.method, route: record.route, status: record.status)
    }

    public func level(method: String, route: String?, status: Int) -> Logger.Level {
        // A 503 is the service refusing for now (database unavailable, deadline passed, overload):
        // its cause has an ERROR line of its own (component database), so that the error log
        // group and its alarm count causes, not the number of clients that were waiting.
        if status == 503 { return .warning }
        if status >= 500 { return .error }
        if route == "/health" && (method == "GET" || method == "HEAD") { return .debug }
        return .info
    }

    /// Whether an exchange's line would be written: asked before building the record, whose
    /// strings (path, client address, User-Agent) cost three allocations a request at ERROR level.
    public func records(method: String, route: String?, status: Int) -> Bool {
        level(method: method, route: route, status: status) >= level
    }

    public func record(_ record: AccessRecord) {
        var scratch = JSONWriter(capacity: 512)
        self.record(record, scratch: &scratch)
    }

    /// Renders the line in `scratch` (emptied first) and hands the bytes to the sink, which
    /// copies them: a caller that keeps one scratch writer (a loop: `HTTPLoopContext`) makes no
    /// allocation per line (a fresh 400-byte writer, then its growth, were two a request).
    public func record(_ record: AccessRecord, scratch: inout JSONWriter) {
        let lineLevel = level(of: record)
        guard lineLevel >= level else { return }
        if format == .json {
            scratch.reset()
            json(record, level: lineLevel, into: &scratch)
            scratch.withUnsafeBytes { sink.write($0) }
        } else {
            sink.write(text(record, level: lineLevel))
        }
    }

    func json(_ record: AccessRecord, level lineLevel: Logger.Level) -> [UInt8] {
        var json = JSONWriter(capacity: 512)
        self.json(record, level: lineLevel, into: &json)
        return json.take()
    }

    /// Written directly, in a fixed order: one line per request must stay cheap (no metadata
    /// dictionary, no sorting). Client-controlled strings are cut so a line stays far below 16 KiB.
    func json(_ record: AccessRecord, level lineLevel: Logger.Level, into json: inout JSONWriter) {
        LogLine.writeStart(to: &json, heads: heads, level: lineLevel)
        // The message in pieces, not interpolated: "GET /todos/… 200".
        json.escaped(record.method)
        json.raw(" ")
        Self.writeCut(record.path, 512, into: &json)
        json.raw(" ")
        json.integer(record.status)
        json.raw("\",\"method\":")
        json.string(record.method)
        json.raw(",\"path\":")
        json.raw("\"")
        Self.writeCut(record.path, 1024, into: &json)
        json.raw("\"")
        json.raw(",\"route\":")
        json.optionalString(record.route)
        json.raw(",\"status\":")
        json.integer(record.status)
        json.raw(",\"durationMs\":")
        Self.appendMilliseconds(record.durationNanoseconds, to: &json)
        json.raw(",\"bytesIn\":")
        json.integer(record.bytesIn)
        json.raw(",\"bytesOut\":")
        json.integer(record.bytesOut)
        json.raw(",\"clientIp\":")
        json.string(record.clientIP)
        json.raw(",\"userAgent\":")
        if record.userAgent == nil, let bytes = record.userAgentBytes, bytes.count <= 512 {
            bytes.withUnsafeBytes { json.string(utf8: $0) }
        } else {
            json.optionalString(record.userAgentText.map { LogLine.cut($0, 512) })
        }
        json.raw(",\"requestId\":")
        json.string(record.requestID)
        json.raw(",\"traceId\":")
        json.optionalString(record.traceID)
        json.raw(",\"userId\":")
        json.optionalString(record.userID)
        json.raw("}")
    }

    func text(_ record: AccessRecord, level lineLevel: Logger.Level) -> [UInt8] {
        var metadata: Logger.Metadata = [
            "status": .stringConvertible(record.status), "durationMs": .string(Self.milliseconds(record.durationNanoseconds)),
            "clientIp": .string(record.clientIP), "requestId": .string(record.requestID),
        ]
        if let route = record.route { metadata["route"] = .string(route) }
        if let userID = record.userID { metadata["userId"] = .string(userID) }
        return LogLine.render(format: .text, timestamp: Timestamp.nowMilliseconds(), level: lineLevel, service: service,
                              component: "access", message: "\(record.method) \(record.path)", metadata: metadata)
    }

    /// `text` escaped, cut as `LogLine.cut` cuts; the common short one straight from the slice.
    static func writeCut(_ text: Substring, _ limit: Int, into json: inout JSONWriter) {
        if text.utf8.count <= limit { json.escaped(text) } else { json.escaped(LogLine.cut(String(text), limit)) }
    }

    /// `1.234` (three decimals), as digits into the line (no strings).
    static func appendMilliseconds(_ nanoseconds: Int64, to json: inout JSONWriter) {
        let micros = Int(max(0, nanoseconds / 1000))
        let fraction = micros % 1000
        json.integer(micros / 1000)
        json.raw(fraction < 10 ? ".00" : fraction < 100 ? ".0" : ".")
        json.integer(fraction)
    }

    /// `1.234` (three decimals).
    static func milliseconds(_ nanoseconds: Int64) -> String {
        let micros = max(0, nanoseconds / 1000)
        let fraction = micros % 1000
        return "\(micros / 1000)." + (fraction < 10 ? "00" : fraction < 100 ? "0" : "") + "\(fraction)"
    }
}
