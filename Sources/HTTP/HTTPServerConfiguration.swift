import Net
import Observability

/// Everything the HTTP layer can be told; built once by the executable from env vars and flags.
public struct HTTPServerConfiguration: Sendable {
    public var host = "0.0.0.0"
    public var port = 8000
    public var limits = HTTPLimits()
    /// The whole head must arrive within this time of its first byte (slowloris).
    public var headerTimeout = TimeSpan.seconds(10)
    /// Longest pause between two pieces of a request body.
    public var bodyTimeout = TimeSpan.seconds(15)
    /// Longest time a response may sit unwritten because the client does not read.
    public var writeTimeout = TimeSpan.seconds(15)
    /// Idle keep-alive connections close after this. 75 s: longer than the ALB's 60 s idle timeout,
    /// so the ALB, not us, closes idle connections; otherwise it can send a request on a connection
    /// we are closing and answer its client 502 (AWS ALB troubleshooting guide).
    public var idleTimeout = TimeSpan.seconds(75)
    /// After an error response we stop writing and keep reading (and discarding) this long, so the
    /// client reads the response instead of an RST (nginx's lingering_close).
    public var lingerTimeout = TimeSpan.seconds(2)
    /// Open connections per process; above it new ones are closed at once. Keeps fds and memory
    /// bounded (an idle connection costs about 1 KiB here: no read buffer of its own).
    public var maxConnections = 10_000
    /// Once this much output is waiting, pipelined requests are not processed until it drains.
    public var outputHighWater = 64 * 1024
    /// One line per exchange, or nil for none.
    public var accessLog: AccessLog?
    /// Count requests and durations per route (what `/metrics` serves); off when nothing scrapes.
    public var recordMetrics = true
    /// Runs before routing for every complete request (client IP, rate limit, request filter).
    public var requestFilter: RequestFilter?
    /// Added to every response (security headers).
    public var responseHeaders = StaticResponseHeaders.none

    public init() {}
}
