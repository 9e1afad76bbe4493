import Glibc
import HTTP
import Logging
import Net
import Postgres
import TestSupport
@testable import TodoAPI

/// The real service (its router, pool and migrations) on port 0, with a database of its own in
/// the test cluster.
final class TodoServer: @unchecked Sendable {
    let admin: BlockingPostgresConnection
    let databaseName = TestDatabase.uniqueName("api")
    let settings: PostgresConnectionSettings
    let group: EventLoopGroup
    let database: PostgresDatabase
    let server: LiveServer
    var port: Int { server.port }

    static var repository: String { "/" + #filePath.split(separator: "/").dropLast(3).joined(separator: "/") }

    /// `settingsOverride`: how the service reaches the database (e.g. through a proxy), given the
    /// settings of the database made for it. `configure`: the pool's configuration.
    init(settingsOverride: ((PostgresConnectionSettings) -> PostgresConnectionSettings)? = nil,
         statementTimeout: Int64 = 5000, logger: Logger = Logger(label: "test"),
         configure: (inout PostgresPoolConfiguration) -> Void = { _ in }) throws {
        admin = try TestDatabase.admin()
        try admin.execute(script: "CREATE DATABASE \(databaseName) OWNER todo")
        var settings = try TestDatabase.settings(statementTimeout: statementTimeout)
        settings["dbname"] = databaseName
        try Migrator(migrations: Migrator.load(directory: Self.repository + "/Migrations"))
            .migrate(BlockingPostgresConnection(settings), logger: Logger(label: "test"))
        self.settings = settingsOverride.map { $0(settings) } ?? settings
        group = try EventLoopGroup(count: 2)
        var configuration = PostgresPoolConfiguration()
        configuration.acquireTimeout = .seconds(10)
        configure(&configuration)
        database = PostgresDatabase(loops: group.loops, writer: self.settings, reader: nil, configuration: configuration,
                                    logger: logger)
        server = try LiveServer(router: Application.makeRouter(database: database), group: group)
        database.start()
    }

    deinit {
        server.stop()
        database.shutdown()
        // The database stays until scripts/test deletes the cluster (see TestDatabase).
    }

    /// One request on a new connection.
    func send(_ method: String, _ path: String, json: String? = nil, headers: [String: String] = [:]) throws -> TestResponse {
        let client = try TestClient(port: port, receiveTimeout: .seconds(30))
        return try send(method, path, json: json, headers: headers, on: client)
    }

    func send(_ method: String, _ path: String, json: String? = nil, headers: [String: String] = [:], on client: TestClient) throws -> TestResponse {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: test\r\n"
        var allHeaders = headers
        if let json {
            if allHeaders["Content-Type"] == nil { allHeaders["Content-Type"] = "application/json" }
            allHeaders["Content-Length"] = String(json.utf8.count)
        }
        for (name, value) in allHeaders { head += "\(name): \(value)\r\n" }
        try client.send(head + "\r\n" + (json ?? ""))
        return try client.readResponse(head: method == "HEAD")
    }

    func count(_ whereClause: StaticString = "true") throws -> Int {
        try BlockingPostgresConnection(settings).query("SELECT count(*) FROM todos WHERE \(sql: whereClause)").int(0, 0)!
    }
}

extension TestResponse {
    /// Minimal field extraction from our own compact JSON (`"name":"value"` or `"name":value`).
    func field(_ name: String) -> String? {
        let text = self.text
        guard let range = text.range(of: "\"\(name)\":") else { return nil }
        let rest = text[range.upperBound...]
        if rest.hasPrefix("\"") {
            return String(rest.dropFirst().prefix { $0 != "\"" })
        }
        return String(rest.prefix { $0 != "," && $0 != "}" })
    }
}

extension String {
    func range(of needle: String) -> Range<String.Index>? {
        var index = startIndex
        while index < endIndex {
            if self[index...].hasPrefix(needle) { return index..<self.index(index, offsetBy: needle.count) }
            index = self.index(after: index)
        }
        return nil
    }
}
