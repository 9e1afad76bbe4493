@testable import Postgres
import Testing

@Suite struct PostgresSettingsTests {
    @Test func urlPasswordsWithSpecialCharactersAreDecoded() throws {
        let settings = try PostgresConnectionSettings.resolve(
            url: "postgres://app:p%40ss%3Aw%2Frd@db.example.com:6543/todo?sslmode=verify-full&sslrootcert=/etc/ca.pem&target_session_attrs=read-write&connect_timeout=3",
            environment: [:])
        #expect(settings["user"] == "app")
        #expect(settings["password"] == "p@ss:w/rd")
        #expect(settings["host"] == "db.example.com")
        #expect(settings["port"] == "6543")
        #expect(settings["dbname"] == "todo")
        #expect(settings["sslmode"] == "verify-full")
        #expect(settings["sslrootcert"] == "/etc/ca.pem")
        #expect(settings["target_session_attrs"] == "read-write")
        #expect(settings.connectTimeout == 3000)
        #expect(!settings.redactedDescription.contains("p@ss"))
        #expect(settings.redactedDescription.contains("host=db.example.com"))
    }

    @Test func failoverDefaultsAndStatementTimeout() throws {
        let settings = try PostgresConnectionSettings.resolve(url: "postgres://h/db?options=-c%20search_path%3Dapp", environment: [:],
                                                              statementTimeoutMilliseconds: 1234)
        #expect(settings["keepalives_idle"] == "1")
        #expect(settings["keepalives_interval"] == "1")
        #expect(settings["keepalives_count"] == "5")
        #expect(settings["tcp_user_timeout"] == "5000")
        #expect(settings["options"] == "-c search_path=app -c statement_timeout=1234")
        #expect(settings["application_name"] == "todo-api")
    }

    @Test func precedenceURLThenPGVariablesThenSecret() throws {
        let secret = #"{"username":"secret-user","password":"s3cr:t@/x","host":"secret-host","port":5433,"dbname":"secretdb","engine":"postgres"}"#
        // Only the secret: everything comes from it.
        let fromSecret = try PostgresConnectionSettings.resolve(url: nil, environment: ["DB_SECRET": secret])
        #expect(fromSecret["user"] == "secret-user")
        #expect(fromSecret["password"] == "s3cr:t@/x")
        #expect(fromSecret["host"] == "secret-host")
        #expect(fromSecret["port"] == "5433")
        #expect(fromSecret["dbname"] == "secretdb")
        // PGHOST and PGUSER win over the secret (libpq reads them itself, so we must not set them).
        let withPG = try PostgresConnectionSettings.resolve(url: nil, environment: ["DB_SECRET": secret, "PGHOST": "pg-host", "PGUSER": "pg-user"])
        #expect(withPG["host"] == nil)
        #expect(withPG["user"] == nil)
        #expect(withPG["password"] == "s3cr:t@/x")
        // The URL wins over both.
        let withURL = try PostgresConnectionSettings.resolve(url: "postgres://url-user@url-host/urldb", environment: ["DB_SECRET": secret, "PGHOST": "pg-host"])
        #expect(withURL["host"] == "url-host")
        #expect(withURL["user"] == "url-user")
        #expect(withURL["dbname"] == "urldb")
        #expect(withURL["port"] == "5433")
        #expect(withURL["password"] == "s3cr:t@/x")
        // Port as a string works too.
        let stringPort = try PostgresConnectionSettings.resolve(url: nil, environment: ["DB_SECRET": #"{"port":"6000"}"#])
        #expect(stringPort["port"] == "6000")
    }

    @Test func badInputNamesTheSettingWithoutEchoingSecrets() {
        #expect {
            _ = try PostgresConnectionSettings.resolve(url: "postgres://u:hunter2@h/db?nosuchparameter=1", environment: [:])
        } throws: { error in
            "\(error)".contains("DATABASE_URL") && !"\(error)".contains("hunter2")
        }
        #expect {
            _ = try PostgresConnectionSettings.resolve(url: nil, environment: ["DB_SECRET": #"{"password": "hunter2""#])
        } throws: { error in
            "\(error)".contains("DB_SECRET") && !"\(error)".contains("hunter2")
        }
        // A member of the wrong type is named, its value is not shown.
        for (secret, field) in [(#"{"password":"hunter2","username":4242}"#, "username"),
                                (#"{"password":"hunter2","port":5432.5}"#, "port"),
                                (#"{"password":["hunter2"]}"#, "password")] {
            #expect {
                _ = try PostgresConnectionSettings.resolve(url: nil, environment: ["DB_SECRET": secret])
            } throws: { error in
                "\(error)".contains("DB_SECRET") && "\(error)".contains("\"\(field)\"") && !"\(error)".contains("hunter2")
                    && !"\(error)".contains("4242") && !"\(error)".contains("5432.5")
            }
        }
        // Not an object at all.
        #expect(throws: PostgresConfigurationError.self) {
            _ = try PostgresConnectionSettings.resolve(url: nil, environment: ["DB_SECRET": #"["hunter2"]"#])
        }
    }

    @Test func secretMembersThatAreNullOrUnknownAreIgnored() throws {
        let secret = #"{"username":"app","password":null,"host":"db","engine":"postgres","dbInstanceIdentifier":"x","port":null}"#
        let settings = try PostgresConnectionSettings.resolve(url: nil, environment: ["DB_SECRET": secret])
        #expect(settings["user"] == "app")
        #expect(settings["host"] == "db")
        #expect(settings["password"] == nil)
        #expect(settings["port"] == nil)
    }

    @Test func interpolationBindsEveryValue() {
        let id = "1'; DROP TABLE todos; --"
        let limit = 20
        let done: Bool? = nil
        let query: PostgresQuery = "SELECT * FROM todos WHERE id = \(id) AND completed = \(done) LIMIT \(limit)"
        #expect(query.sql == "SELECT * FROM todos WHERE id = $1 AND completed = $2 LIMIT $3")
        #expect(query.binds == [id, nil, "20"])
        #expect(query.description == query.sql)
    }

    @Test func rebindingKeepsTheStatementAndBindsTheNewValues() {
        let statement: PostgresQuery = "SELECT * FROM todos WHERE id = \("") AND title = \("")"
        let query = statement.rebinding { $0.append("1'; DROP TABLE todos; --"); $0.append(nil as String?) }
        #expect(query.sql == "SELECT * FROM todos WHERE id = $1 AND title = $2")
        #expect(query.binds == ["1'; DROP TABLE todos; --", nil])
        #expect(statement.binds == ["", ""])
    }

    @Test func bindsKeepEachValueAsGivenAndNullApartFromEmpty() {
        var binds = PostgresBinds()
        let long = String(repeating: "é", count: 300)
        binds.append("")
        binds.append(nil as String?)
        binds.append(long)
        binds.append(true)
        binds.append(Int64(-42))
        binds.append("tab\tand 'quote'")
        #expect(binds.count == 6)
        #expect(binds.values == ["", nil, long, "true", "-42", "tab\tand 'quote'"])
        // libpq sees one NUL-terminated string per value, NULL as a null pointer.
        let seen = binds.withCStrings { pointers in pointers.map { $0.map { String(cString: $0) } } }
        #expect(seen == ["", nil, long, "true", "-42", "tab\tand 'quote'"])
        #expect(PostgresBinds().withCStrings { $0.count } == 0)
        // Equal when the values are; the description never shows them.
        #expect(binds == ["", nil, long, "true", "-42", "tab\tand 'quote'"])
        #expect(binds != ["", "", long, "true", "-42", "tab\tand 'quote'"])
        #expect(binds.description == "6 values")
        // A value type: appending to a copy leaves the original as it was.
        var copy = binds
        copy.append("more")
        #expect(copy.count == 7 && binds.count == 6)
        #expect(binds.values == ["", nil, long, "true", "-42", "tab\tand 'quote'"])
        #expect(copy.values.last == "more")
    }

    @Test func rowKeysAreEqualByText() {
        let a = RowKey("0f6e0c8e-3f0a-4c56-9d43-bd2b8e6f1a01"), b = RowKey(String("0f6e0c8e-3f0a-4c56-9d43-bd2b8e6f1a01"))
        #expect(a == b && a.hashValue == b.hashValue)
        #expect(a != RowKey("0f6e0c8e-3f0a-4c56-9d43-bd2b8e6f1a02"))
        let query: PostgresQuery = "UPDATE todos SET title = \("x") WHERE id = \("y")"
        #expect(query.changing(row: a.text).rowKey == b)
    }

    @Test func migrationChecksumIsSHA256() {
        #expect(Migrator.sha256Hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func linkedLibraryVersionsAreReadable() {
        // The start-up log reports them: libpq 15.x (Debian's postgresql-15), OpenSSL 3.
        #expect(LinkedLibraries.libpq.hasPrefix("15."))
        #expect(Int(LinkedLibraries.libpq.dropFirst(3)) != nil)
        #expect(LinkedLibraries.openSSL.hasPrefix("OpenSSL 3."))
    }
}
