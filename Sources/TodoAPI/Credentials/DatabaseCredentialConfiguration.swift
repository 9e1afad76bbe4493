import Net

/// How the database credentials are obtained besides DATABASE_URL / PG* / DB_SECRET: a secret
/// the service reads itself (and again when it rotates), or RDS IAM authentication tokens.
public struct DatabaseCredentialConfiguration: Sendable {
    /// `DB_SECRET_ID`: a Secrets Manager secret ARN or name.
    public var secretId: String?
    /// `DB_SECRET_REFRESH`: Secrets Manager rotation replaces the password at a moment of its
    /// choosing; an hourly read bounds how long new connections can keep failing if the 28P01
    /// trigger is missed (no connection opened since). One call an hour per task costs nothing.
    public var secretRefresh = TimeSpan.seconds(3600)
    /// `DB_IAM_AUTH`.
    public var iamAuthentication = false

    public init() {}
}
