import Logging

/// What the HTTP layer reports about each exchange, after the response is written.
public struct AccessRecord: Sendable {
    public var method: String
    /// Without the query (query values may carry personal data).
    public var path: String
    /// The route template (`/todos/:id`), or nil when no route matched.
    public var route: String?
    public var status: Int
    public var durationNanoseconds: Int64
    public var bytesIn: Int
    public var bytesOut: Int
    public var clientIP: String
    public var userAgent: String?
    public var requestID: String
    /// The `Root=` part of the ALB's `X-Amzn-Trace-Id`.
    public var traceID: String?

    public init(method: String, path: String, route: String?, status: Int, durationNanoseconds: Int64, bytesIn: Int,
                bytesOut: Int, clientIP: String, userAgent: String?, requestID: String, traceID: String?) {
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
}

/// One log line per exchange (component `access`): 5xx at ERROR (so Fluent Bit sends them to
/// CloudWatch), `GET /health` at DEBUG (the ALB calls it every 30 s per target), the rest INFO.
/// Lines below the configured level are not even rendered.
public struct AccessLog: Sendable {
    public let sink: LogSink
    public let level: Logger.Level
    public let service: String
    public let format: LogFormat

    public init(sink: LogSink, level: Logger.Level, service: String, format: LogFormat) {
        self.sink = sink
        self.level = level
        self.service = service
        self.format = format
    }

    public func level(of record: AccessRecord) -> Logger.Level {
        if record.status >= 500 { return .error }
        if record.route == "/health" && (record.method == "GET" || record.method == "HEAD") { return .debug }
        return .info
    }

    public func record(_ record: AccessRecord) {
        let lineLevel = level(of: record)
        guard lineLevel >= level else { return }
        var metadata: Logger.Metadata = [
            "method": .string(record.method),
            "path": .string(record.path),
            "status": .stringConvertible(record.status),
            "durationMs": .string(Self.milliseconds(record.durationNanoseconds)),
            "bytesIn": .stringConvertible(record.bytesIn),
            "bytesOut": .stringConvertible(record.bytesOut),
            "clientIp": .string(record.clientIP),
            "requestId": .string(record.requestID),
        ]
        if let route = record.route { metadata["route"] = .string(route) }
        if let agent = record.userAgent { metadata["userAgent"] = .string(agent) }
        if let trace = record.traceID { metadata["traceId"] = .string(trace) }
        sink.write(LogLine.render(format: format, timestamp: Timestamp.nowMilliseconds(), level: lineLevel, service: service,
                                  component: "access", message: "\(record.method) \(record.path) \(record.status)", metadata: metadata))
    }

    /// `1.234` (three decimals).
    static func milliseconds(_ nanoseconds: Int64) -> String {
        let micros = max(0, nanoseconds / 1000)
        let fraction = micros % 1000
        return "\(micros / 1000)." + (fraction < 10 ? "00" : fraction < 100 ? "0" : "") + "\(fraction)"
    }
}
