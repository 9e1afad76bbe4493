/// Where a connection's credentials come from when they change while the service runs: a secret
/// re-read from Secrets Manager, or an RDS IAM token per connection. The pool asks it for every
/// connection it opens and tells it when the server refused them.
///
/// Postgres knows nothing of AWS: the service joins an implementation to the pool.
public protocol PostgresCredentialSource: Sendable {
    /// Fills in the credentials of a connection about to open (`settings` are the configured
    /// ones). Runs on a loop thread: must not block. An error fails this attempt (503s, retry).
    func prepare(_ settings: inout PostgresConnectionSettings) -> PostgresError?

    /// The server refused a connection's credentials (SQLSTATE 28P01 invalid_password, or 28000
    /// invalid_authorization_specification, which RDS answers for a bad IAM token). From a loop
    /// thread: must not block.
    func rejected(sqlState: String)
}

extension PostgresError {
    /// The server refused the credentials (class 28).
    public var isAuthenticationFailure: Bool {
        sqlState == "28P01" || sqlState == "28000"
    }
}
