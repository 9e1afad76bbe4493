import CLibPQ
import JSON

/// How to reach the database: libpq connection parameters, resolved once at start-up.
///
/// Precedence per parameter: `DATABASE_URL` (any libpq parameter may appear in it: sslmode,
/// sslrootcert, target_session_attrs, ...), then libpq's own `PG*` variables (libpq reads them
/// itself for whatever the URL left out), then `DB_SECRET`, the Secrets Manager JSON that ECS
/// injects. On top, defaults for a service that must notice a failover fast (AWS's Aurora
/// guidance): TCP keepalives after 1 s idle, every 1 s, 5 probes; tcp_user_timeout 5 s; and a
/// statement timeout on every session.
public struct PostgresConnectionSettings: Sendable {
    /// libpq keywords and values, in order. Contains the password: never log this.
    public private(set) var parameters: [(keyword: String, value: String)]
    /// How long a connection attempt may take (libpq ignores connect_timeout in non-blocking
    /// connects, so the pool enforces it).
    public var connectTimeout: TimeSpanMilliseconds
    /// The keywords whose values came from the secret (`DB_SECRET`, or `DB_SECRET_ID` read at
    /// start): a secret fetched again later replaces exactly these (`applySecret`).
    public private(set) var secretKeywords: Set<String> = []

    public typealias TimeSpanMilliseconds = Int64

    public init(parameters: [(keyword: String, value: String)], connectTimeout: TimeSpanMilliseconds = 5000) {
        self.parameters = parameters
        self.connectTimeout = connectTimeout
    }

    public subscript(keyword: String) -> String? {
        get { parameters.last { $0.keyword == keyword }?.value }
        set {
            parameters.removeAll { $0.keyword == keyword }
            if let newValue { parameters.append((keyword, newValue)) }
        }
    }

    /// The settings without secrets, for logs: `host=db port=5432 dbname=todo user=app sslmode=verify-full`.
    public var redactedDescription: String {
        let shown = ["host", "hostaddr", "port", "dbname", "user", "sslmode", "target_session_attrs"]
        return parameters.filter { shown.contains($0.keyword) }.map { "\($0.keyword)=\($0.value)" }.joined(separator: " ")
    }

    /// The host (or address) and port, for log lines: never the user or password.
    var hostDescription: String {
        let host = self["host"] ?? self["hostaddr"] ?? ProcessEnvironment.value("PGHOST") ?? "localhost"
        let port = self["port"] ?? ProcessEnvironment.value("PGPORT") ?? "5432"
        return "\(host):\(port)"
    }

    /// Builds the settings from a URL (or nil), the environment, and the service's defaults.
    public static func resolve(url: String?, environment: [String: String],
                               statementTimeoutMilliseconds: Int64 = 5000,
                               connectTimeoutMilliseconds: Int64 = 5000) throws(PostgresConfigurationError) -> PostgresConnectionSettings {
        var settings = PostgresConnectionSettings(parameters: [])
        if let url {
            settings.parameters = try parse(url)
        }
        if let secret = environment["DB_SECRET"] {
            let fields = try parseSecret(secret)
            // DB_SECRET fills only what neither the URL nor a PG* variable gave.
            let mapping = [("host", "PGHOST"), ("port", "PGPORT"), ("dbname", "PGDATABASE"),
                           ("user", "PGUSER"), ("password", "PGPASSWORD")]
            for (keyword, variable) in mapping where settings[keyword] == nil && environment[variable] == nil {
                if let value = fields[keyword] {
                    settings[keyword] = value
                    settings.secretKeywords.insert(keyword)
                }
            }
        }
        func setDefault(_ keyword: String, _ value: String, variable: String? = nil) {
            if settings[keyword] == nil && (variable.map { environment[$0] == nil } ?? true) {
                settings[keyword] = value
            }
        }
        setDefault("keepalives", "1")
        setDefault("keepalives_idle", "1")
        setDefault("keepalives_interval", "1")
        setDefault("keepalives_count", "5")
        setDefault("tcp_user_timeout", "5000")
        setDefault("application_name", "todo-api", variable: "PGAPPNAME")
        // Setting `options` hides PGOPTIONS from libpq, so carry it over.
        let baseOptions = settings["options"] ?? environment["PGOPTIONS"] ?? ""
        settings["options"] = (baseOptions.isEmpty ? "" : baseOptions + " ") + "-c statement_timeout=\(statementTimeoutMilliseconds)"
        if let seconds = (settings["connect_timeout"] ?? environment["PGCONNECT_TIMEOUT"]).flatMap(Int64.init), seconds > 0 {
            settings.connectTimeout = seconds * 1000
        } else {
            settings.connectTimeout = connectTimeoutMilliseconds
        }
        return settings
    }

    /// A secret read again (rotated): its values for the keywords the first one filled. A keyword
    /// the new secret lacks keeps its value.
    public mutating func applySecret(_ fields: [String: String]) {
        for keyword in secretKeywords {
            if let value = fields[keyword] { self[keyword] = value }
        }
    }

    /// libpq's own parser (PQconninfoParse): URIs (`postgres://user:p%40ss@host:5432/db?sslmode=require`)
    /// and key=value strings, with percent-decoding, exactly as libpq would read them.
    static func parse(_ url: String) throws(PostgresConfigurationError) -> [(keyword: String, value: String)] {
        var error: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(url, &error) else {
            let message = error.map { PostgresConnection.libpqMessage($0) } ?? "cannot parse"
            if let error { PQfreemem(error) }
            // libpq's messages name the bad part, not the password; the URL itself is not repeated.
            throw PostgresConfigurationError(message: "DATABASE_URL is invalid: \(message)")
        }
        defer { PQconninfoFree(options) }
        var result: [(keyword: String, value: String)] = []
        var option = options
        while let keyword = option.pointee.keyword {
            if let value = option.pointee.val {
                result.append((String(cString: keyword), String(cString: value)))
            }
            option += 1
        }
        return result
    }

    /// `{"username","password","host","port","dbname",...}` as Secrets Manager stores RDS
    /// credentials; `port` may be a number or a string; other members (`engine`,
    /// `dbInstanceIdentifier`, ...) are ignored, and so is a member that is `null`.
    public static func parseSecret(_ json: String) throws(PostgresConfigurationError) -> [String: String] {
        // Never the parser's message or the offending value: either could quote the secret.
        let malformed = PostgresConfigurationError(
            message: "DB_SECRET is not the expected JSON object {\"username\",\"password\",\"host\",\"port\",\"dbname\"}")
        guard case .object(let members)? = try? JSONParser.parse(Array(json.utf8)) else { throw malformed }
        let keywords = ["username": "user", "password": "password", "host": "host", "port": "port", "dbname": "dbname"]
        var fields: [String: String] = [:]
        for (key, value) in members {
            guard let keyword = keywords[key] else { continue }
            switch value {
            case .null:
                continue
            case .string(let text):
                fields[keyword] = text
            case .number(let digits) where keyword == "port" && Int(digits) != nil:
                fields[keyword] = digits
            default:
                throw PostgresConfigurationError(message: "DB_SECRET: \"\(key)\" must be a string\(keyword == "port" ? " or an integer" : ""), not \(value.typeName)")
            }
        }
        return fields
    }
}

public struct PostgresConfigurationError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
