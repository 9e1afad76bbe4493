import HTTP

/// The service's routes, assembled once at start-up.
public enum Application {
    public static func makeRouter() -> Router {
        var router = Router()
        HealthRoutes.register(in: &router)
        return router
    }
}
