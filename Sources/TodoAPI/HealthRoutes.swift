import HTTP
import Net
import Postgres

/// `GET /health`: "this process can serve". It answers from the loop without touching any
/// dependency, so a database hiccup never makes the ALB or ECS replace a healthy task
/// (../shared/seeds: auto-recovery restarts the service when /health fails).
enum HealthRoutes {
    /// Made once: each request returns a copy (a few retains), where building it in the handler
    /// built, copied and destroyed one (~330 instructions a `GET /health`, callgrind).
    static let ok = HTTPResponse.json(.ok, Array(#"{"status":"ok"}"#.utf8))

    static func register(in router: inout Router, database: PostgresDatabase?) {
        router.add(.get, "/health", .sync { _ in ok })
        // Readiness: the database answers a ping within 1 s. For deploy scripts and operators,
        // not for the ALB (a database blip must not take every task out of the target group).
        router.add(.get, "/health/ready", .async { request in
            guard let database else {
                return .problem(.serviceUnavailable, detail: "No database is configured.", requestID: request.requestID,
                                headers: [("Retry-After", "5")])
            }
            if let reason = await database.ping(timeout: .seconds(1)) {
                return .problem(.serviceUnavailable, detail: "Not ready: \(reason).", requestID: request.requestID,
                                headers: [("Retry-After", "1")])
            }
            return .json(.ok, Array(#"{"status":"ready"}"#.utf8))
        })
    }
}
