import HTTP
import Postgres

/// The service's routes, assembled once at start-up.
public enum Application {
    /// `database` is nil when none is configured: only `/health` is served then.
    public static func makeRouter(database: PostgresDatabase? = nil) -> Router {
        var router = Router()
        HealthRoutes.register(in: &router)
        if let database { TodoRoutes.register(in: &router, database: database) }
        return router
    }
}
