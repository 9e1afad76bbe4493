import HTTP

/// `GET /health`: "this process can serve". It answers from the loop without touching any
/// dependency, so a database hiccup never makes the ALB or ECS replace a healthy task
/// (../shared/seeds: auto-recovery restarts the service when /health fails).
enum HealthRoutes {
    static let okBody: [UInt8] = Array(#"{"status":"ok"}"#.utf8)

    static func register(in router: inout Router) {
        router.add(.get, "/health", .sync { _ in
            HTTPResponse.json(.ok, okBody)
        })
    }
}
