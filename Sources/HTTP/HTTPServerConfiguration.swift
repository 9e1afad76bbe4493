import Net
import Observability

/// Everything the HTTP layer can be told; built once by the executable from env vars and flags.
public struct HTTPServerConfiguration: Sendable {
    public var host = "0.0.0.0"
    public var port = 8000
    public var limits = HTTPLimits()
    /// The whole head must arrive within this time of the request line's first byte, however it
    /// trickles (slowloris; nginx's client_header_timeout counts the same way).
    public var headerTimeout = TimeSpan.seconds(10)
    /// Longest pause between two pieces of a request body (nginx's client_body_timeout).
    public var bodyTimeout = TimeSpan.seconds(15)
    /// After `minRateGrace`, a body must have arrived at this average rate in bytes/s or the
    /// client gets 408 (Apache mod_reqtimeout's `body=...,MinRate=500`); 0 turns it off. Pauses
    /// alone let one byte per 14 s hold a connection for hours.
    public var bodyMinRate = 500
    /// Longest time a response may sit unwritten because the client does not read (nginx's
    /// send_timeout, between two successful writes).
    public var writeTimeout = TimeSpan.seconds(15)
    /// After `minRateGrace`, a response must be taken at this average rate in bytes/s or the
    /// connection is reset: a client reading a little before each stall ends still cannot hold a
    /// response for hours. 0 turns it off.
    public var sendMinRate = 1024
    /// Time before the minimum rates apply: a slow start (TCP slow start, a client's GC pause) is
    /// no offence.
    public var minRateGrace = TimeSpan.seconds(10)
    /// Kernel send buffer per connection (SO_SNDBUF; Linux reserves twice this). Fixed instead of
    /// auto-tuned: auto-tuning took a whole 1.34 MB list response into the kernel for a client
    /// that never read, so 220 such clients pinned 324 MB and no write ever stalled. 64 KiB still
    /// fills a 1 Gbit/s path at 1 ms round trip (inside a VPC, the ALB's); 0 leaves the kernel's.
    public var sendBufferBytes = 64 * 1024
    /// Idle keep-alive connections close after this. 75 s: longer than the ALB's 60 s idle timeout,
    /// so the ALB, not us, closes idle connections; otherwise it can send a request on a connection
    /// we are closing and answer its client 502 (AWS ALB troubleshooting guide).
    public var idleTimeout = TimeSpan.seconds(75)
    /// After an error response we stop writing and keep reading (and discarding) this long, so the
    /// client reads the response instead of an RST (nginx's lingering_close).
    public var lingerTimeout = TimeSpan.seconds(2)
    /// Open connections per process; at it the longest-idle keep-alive connection of the loop
    /// makes room, and with none idle a new one is closed at once. Keeps fds and memory bounded
    /// (an idle connection costs about 1 KiB here: no read buffer of its own).
    public var maxConnections = 10_000
    /// Open connections per client address, for peers `isExemptFromAddressLimit` does not exempt
    /// (behind the ALB every connection comes from a few ALB addresses: they are trusted
    /// proxies). 0 (the default here; the service sets 256): no cap.
    public var maxConnectionsPerAddress = 0
    public var isExemptFromAddressLimit: (@Sendable (PeerAddress) -> Bool)?
    /// On a graceful shutdown an idle keep-alive connection stays open this long, answering (with
    /// `Connection: close`) a request that was already on its way; closing it at once reset the
    /// requests clients sent in the milliseconds before they saw our FIN.
    public var drainGrace = TimeSpan.seconds(1)
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

extension HTTPServerConfiguration {
    var connectionTimeouts: ConnectionTimeouts {
        ConnectionTimeouts(header: headerTimeout, body: bodyTimeout, bodyMinRate: bodyMinRate, bodyGrace: minRateGrace,
                           write: writeTimeout, sendMinRate: sendMinRate, sendGrace: minRateGrace,
                           idle: idleTimeout, linger: lingerTimeout, drainGrace: drainGrace)
    }
}
