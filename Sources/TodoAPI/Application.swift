import HTTP
import Postgres
import Security

/// The service's routes, assembled once at start-up.
public enum Application {
    /// `database` is nil when none is configured: only `/health` is served then.
    /// `openAPI`: the contract (docs/openapi.yaml) to serve at `/openapi.yaml`.
    /// `authentication`: the gate of `/todos` when AUTH is on (nil: off).
    public static func makeRouter(database: PostgresDatabase? = nil, openAPI: [UInt8]? = nil,
                                  authentication: RouteAuthentication? = nil) -> Router {
        var router = Router()
        HealthRoutes.register(in: &router, database: database)
        if let database { TodoRoutes.register(in: &router, database: database, authentication: authentication) }
        if let openAPI {
            router.add(.get, "/openapi.yaml", .sync { _ in
                HTTPResponse(status: .ok, contentType: "application/yaml", body: openAPI)
            })
        }
        return router
    }

    /// Route paths whose every value is inert (see `PathShape`): the request filter skips its
    /// path rules for them. `/todos/:id` only with a UUID, which is all the route serves.
    public static let inertPaths: [PathShape] = ["/todos", "/todos/{uuid}", "/health", "/health/ready"].compactMap(PathShape.init)
}
