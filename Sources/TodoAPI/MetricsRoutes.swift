import Net
import Glibc
import HTTP
import Observability
import Postgres
import Security

/// `GET /metrics` in the Prometheus text format (version 0.0.4), for the admin listener only:
/// the ALB's target port never exposes it.
public enum MetricsRoutes {
    public static func makeRouter(server: HTTPServer, sink: LogSink?, database: PostgresDatabase?, security: SecurityFilter? = nil,
                                  authentication: RouteAuthentication? = nil) -> Router {
        var router = Router()
        let startTime = Double(Timestamp.nowMilliseconds()) / 1000
        router.add(.get, "/metrics", .async { _ in
            let http = await withCheckedContinuation { continuation in server.metrics { continuation.resume(returning: $0) } }
            let pool = await database?.statistics()
            var text = PrometheusText()
            render(http, openConnections: server.openConnections, into: &text)
            text.family("logs_dropped_total", "counter", "Log lines dropped because stdout did not keep up.")
            text.sample("logs_dropped_total", [], Double(sink?.droppedTotal ?? 0))
            if let pool {
                text.family("db_pool_connections", "gauge", "Database connections by state.")
                text.sample("db_pool_connections", [("state", "idle")], Double(pool.idle))
                text.sample("db_pool_connections", [("state", "busy")], Double(pool.busy))
                text.sample("db_pool_connections", [("state", "opening")], Double(pool.opening))
                text.family("db_pool_waiting", "gauge", "Queries waiting for a database connection.")
                text.sample("db_pool_waiting", [], Double(pool.waiting))
                text.family("db_pool_timeouts_total", "counter", "Queries that found no connection within the acquire timeout.")
                text.sample("db_pool_timeouts_total", [], Double(pool.timeouts))
                text.family("db_connections_opened_total", "counter", "Writer connections opened (failover probes included).")
                text.sample("db_connections_opened_total", [], Double(pool.opened))
                text.histogram("db_pool_acquire_seconds", "Wait for a database connection.", pool.timings.acquire.counts,
                               sum: pool.timings.acquire.sum, count: pool.timings.acquire.count, buckets: PostgresTimings.buckets)
                text.histogram("db_query_duration_seconds", "Query time from submission to result.", pool.timings.queries.counts,
                               sum: pool.timings.queries.sum, count: pool.timings.queries.count, buckets: PostgresTimings.buckets)
                text.family("db_errors_total", "counter", "Failed queries by SQLSTATE (or failure kind).")
                for (code, count) in pool.timings.errors.sorted(by: { $0.key < $1.key }) {
                    text.sample("db_errors_total", [("sqlstate", code)], Double(count))
                }
            }
            if let security {
                let counts = security.counts()
                text.family("waf_matches_total", "counter", "Request filter matches by rule and action.")
                for match in counts.matches {
                    text.sample("waf_matches_total", [("rule", match.rule), ("action", match.action)], Double(match.count))
                }
                text.family("rate_limited_total", "counter", "Requests refused with 429.")
                text.sample("rate_limited_total", [], Double(counts.rateLimited))
                text.family("rate_limit_tracked_clients", "gauge", "Client IPs the rate limiter tracks.")
                text.sample("rate_limit_tracked_clients", [], Double(counts.trackedClients))
            }
            if let authentication {
                text.family("auth_failures_total", "counter", "Requests refused with 401, by reason.")
                for (reason, count) in authentication.failureCounts {
                    text.sample("auth_failures_total", [("reason", reason)], Double(count))
                }
            }
            renderProcess(startTime: startTime, into: &text)
            return HTTPResponse(status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: text.bytes)
        })
        return router
    }

    static func render(_ metrics: HTTPMetrics, openConnections: Int, into text: inout PrometheusText) {
        text.family("http_requests_total", "counter", "HTTP requests by method, route template and status.")
        for (key, count) in metrics.requests.sorted(by: { ($0.key.route, $0.key.method, $0.key.status) < ($1.key.route, $1.key.method, $1.key.status) }) {
            text.sample("http_requests_total", [("method", key.method), ("route", key.route), ("status", String(key.status))], Double(count))
        }
        text.family("http_request_duration_seconds", "histogram", "Time from a request's dispatch to its response, by route template.")
        for (route, histogram) in metrics.durations.sorted(by: { $0.key < $1.key }) {
            var cumulative = 0
            for (i, bound) in HTTPMetrics.buckets.enumerated() {
                cumulative += histogram.counts[i]
                text.sample("http_request_duration_seconds_bucket", [("route", route), ("le", PrometheusText.number(bound))], Double(cumulative))
            }
            text.sample("http_request_duration_seconds_bucket", [("route", route), ("le", "+Inf")], Double(histogram.count))
            text.sample("http_request_duration_seconds_sum", [("route", route)], histogram.sum)
            text.sample("http_request_duration_seconds_count", [("route", route)], Double(histogram.count))
        }
        text.family("http_requests_in_flight", "gauge", "Requests being handled.")
        text.sample("http_requests_in_flight", [], Double(metrics.inFlight))
        text.family("http_connections_open", "gauge", "Open client connections.")
        text.sample("http_connections_open", [], Double(openConnections))
    }

    /// The standard process collector's metrics, from /proc.
    static func renderProcess(startTime: Double, into text: inout PrometheusText) {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
        text.family("process_cpu_seconds_total", "counter", "User and system CPU time.")
        text.sample("process_cpu_seconds_total", [], cpu)
        var resident = 0.0
        // statm: size and resident pages first.
        if let statm = FileBytes.text("/proc/self/statm", limit: 256) {
            let parts = statm.split(separator: " ")
            if parts.count >= 2, let pages = Int(parts[1]) { resident = Double(pages * Int(sysconf(Int32(_SC_PAGESIZE)))) }
        }
        text.family("process_resident_memory_bytes", "gauge", "Resident memory.")
        text.sample("process_resident_memory_bytes", [], resident)
        var fds = 0
        if let dir = opendir("/proc/self/fd") {
            while readdir(dir) != nil { fds += 1 }
            closedir(dir)
            fds = max(0, fds - 3)  // ".", ".." and the directory's own fd
        }
        text.family("process_open_fds", "gauge", "Open file descriptors.")
        text.sample("process_open_fds", [], Double(fds))
        text.family("process_start_time_seconds", "gauge", "Start time since the Unix epoch.")
        text.sample("process_start_time_seconds", [], startTime)
    }
}

/// The Prometheus text exposition format: `# HELP`, `# TYPE`, then samples with escaped labels.
struct PrometheusText {
    var bytes: [UInt8] = []

    mutating func family(_ name: String, _ type: String, _ help: String) {
        bytes.append(contentsOf: "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n".utf8)
    }

    mutating func histogram(_ name: String, _ help: String, _ counts: [Int], sum: Double, count: Int, buckets: [Double]) {
        family(name, "histogram", help)
        var cumulative = 0
        for (i, bound) in buckets.enumerated() {
            cumulative += counts[i]
            sample(name + "_bucket", [("le", Self.number(bound))], Double(cumulative))
        }
        sample(name + "_bucket", [("le", "+Inf")], Double(count))
        sample(name + "_sum", [], sum)
        sample(name + "_count", [], Double(count))
    }

    mutating func sample(_ name: String, _ labels: [(String, String)], _ value: Double) {
        var line = name
        if !labels.isEmpty {
            line += "{" + labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",") + "}"
        }
        line += " \(Self.number(value))\n"
        bytes.append(contentsOf: line.utf8)
    }

    static func number(_ value: Double) -> String {
        if value == value.rounded() && abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }

    /// Backslash, double quote and newline are escaped in label values.
    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }
}
