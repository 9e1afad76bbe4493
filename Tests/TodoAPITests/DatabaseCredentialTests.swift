import AWS
import Net
@testable import Postgres
import Synchronization
import Testing
import TestSupport
@testable import TodoAPI

/// Credentials that change while the service runs, against the stable test cluster.
@Suite struct DatabaseCredentialTests {
    static let aws = AWSCredentialProvider(source: .environment(AWSCredentials(
        accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", sessionToken: "session/token+1=")))
    static let frozen: Int64 = 1_764_979_200  // 2025-12-06T00:00:00Z

    /// The IAM token is what libpq sends as the password: a role whose password is the token for
    /// a frozen clock accepts a pool signing at that clock, and refuses one a second later.
    @Test func theIAMTokenIsThePasswordLibpqSends() async throws {
        let base = try TestDatabase.settings()
        let role = TestDatabase.uniqueName("iam")
        let target = IAMTokenCredentials.Target(host: base["host"]!, port: Int(base["port"]!)!, user: role)
        let token = RDSAuthToken.generate(host: target.host, port: target.port, user: role, region: "us-east-1",
                                          credentials: Self.aws.current()!, epochSeconds: Self.frozen)
        #expect(token.hasPrefix("\(target.host):\(target.port)/?Action=connect&DBUser=\(role)&"))
        #expect(!token.contains("'"), "the token is embedded in CREATE ROLE below")
        let admin = try TestDatabase.admin()
        try admin.execute(script: "CREATE ROLE \(role) LOGIN PASSWORD '\(token)'")

        var settings = base
        settings["user"] = role
        settings["password"] = nil
        let accepted = IAMTokenCredentials(region: "us-east-1", aws: Self.aws, clock: { Self.frozen })
        let db = try LoopDatabase(settings: settings, credentials: accepted)
        let result = try await eventually(attempts: 50) { try await db.run { try await $0.query("SELECT current_user AS who") } }
        #expect(result.string(0, 0) == role)

        let refused = IAMTokenCredentials(region: "us-east-1", aws: Self.aws, clock: { Self.frozen + 1 })
        let other = try LoopDatabase(settings: settings, credentials: refused)
        await #expect(throws: PostgresError.self) { try await other.run { try await $0.query("SELECT 1") } }
    }

    @Test func iamAuthenticationNeedsTLSAHostAndAUser() throws {
        let environment = ["AWS_REGION": "eu-west-1"]
        func make(_ url: String, _ environment: [String: String] = environment) throws -> IAMTokenCredentials {
            try IAMTokenCredentials.make(endpoints: [PostgresConnectionSettings.resolve(url: url, environment: [:])], environment: environment, aws: Self.aws)
        }
        #expect(throws: ConfigurationError.self) { try make("postgresql://app@db.example.com/todo?sslmode=disable") }
        // libpq's default, prefer, may fall back to plain text.
        #expect(throws: ConfigurationError.self) { try make("postgresql://app@db.example.com/todo") }
        #expect(throws: ConfigurationError.self) { try make("postgresql://db.example.com/todo?sslmode=require") }
        #expect(throws: ConfigurationError.self) { try make("postgresql://app@/todo?host=/var/run/postgresql&sslmode=require") }
        #expect(try make("postgresql://app@db.example.com/todo?sslmode=verify-full").region == "eu-west-1")
        #expect(try make("postgresql://app@db.example.com/todo", ["PGSSLMODE": "require", "AWS_DEFAULT_REGION": "us-west-2"]).region == "us-west-2")
        // No region variable: the one in an RDS host name.
        #expect(try make("postgresql://app@todo.cluster-c1a2.ap-northeast-1.rds.amazonaws.com/todo?sslmode=require", [:]).region == "ap-northeast-1")
        #expect(throws: ConfigurationError.self) { try make("postgresql://app@db.example.com/todo?sslmode=require", [:]) }
    }

    @Test func aSecretReadAgainReplacesWhatTheFirstFilled() throws {
        let secret = #"{"username":"app","password":"A","host":"db.internal","port":5432,"dbname":"todo","engine":"postgres"}"#
        var settings = try PostgresConnectionSettings.resolve(url: "postgresql://db.override:6000?sslmode=require", environment: ["DB_SECRET": secret])
        #expect(settings.secretKeywords == ["user", "password", "dbname"])
        settings.applySecret(["user": "app_b", "password": "B", "host": "elsewhere", "dbname": "todo"])
        #expect(settings["user"] == "app_b" && settings["password"] == "B")
        #expect(settings["host"] == "db.override", "the URL's host still wins")
        #expect(settings["port"] == "6000")
    }

    @Test func credentialSettingsAndTheirConflicts() throws {
        let configuration = try ServiceConfiguration.resolve(environment: ["DB_SECRET_ID": "todo/db", "DB_SECRET_REFRESH": "15m"], flags: [:])
        #expect(configuration.databaseCredentials.secretId == "todo/db")
        #expect(configuration.databaseCredentials.secretRefresh == .seconds(900))
        #expect(try ServiceConfiguration.resolve(environment: [:], flags: ["db-iam-auth": "true"]).databaseCredentials.iamAuthentication)
        #expect(throws: ConfigurationError.self) {
            try ServiceConfiguration.resolve(environment: ["DB_SECRET_ID": "todo/db", "DB_IAM_AUTH": "true"], flags: [:])
        }
        #expect(throws: ConfigurationError.self) { try ServiceConfiguration.resolve(environment: ["DB_IAM_AUTH": "maybe"], flags: [:]) }
        // No AWS credentials anywhere: a configuration error naming the setting, before any call.
        let error = try #require(throws: ConfigurationError.self) {
            try DatabaseCredentialSetup.resolve(configuration: configuration, environment: ["DB_SECRET_ID": "todo/db", "AWS_REGION": "us-east-1"])
        }
        #expect(error.setting == "DB_SECRET_ID")
    }
}
