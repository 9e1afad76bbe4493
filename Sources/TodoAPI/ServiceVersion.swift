/// The service's version, printed by `todo-api --version` and `todo-api version`. Raised by hand
/// with each release; the image tag (deploy/) carries the commit.
public enum ServiceVersion {
    public static let current = "0.14.0"
}
