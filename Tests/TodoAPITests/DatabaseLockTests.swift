import Glibc
import HTTP
import Logging
import Net
import Postgres
import Testing
import TestSupport
@testable import TodoAPI

/// The done-when of the PostgreSQL issue, over real sockets and a real database: while 50 requests
/// wait on a locked todos table, GET /health on the same loops is still answered, and the 50 all
/// finish once the lock is released.
@Suite struct DatabaseLockTests {
    @Test func healthIsAnsweredWhileRequestsWaitOnALockedTable() throws {
        let admin = try TestDatabase.admin()
        let dbName = TestDatabase.uniqueName("lock")
        try admin.execute(script: "CREATE DATABASE \(dbName) OWNER todo")
        // Statement timeout far above any stall of the test process: the 50 requests must still be
        // waiting on the lock when /health is checked, also when the machine (2 cores, tests in
        // parallel) starves this test for many seconds; a 5 s timeout could answer them first.
        var settings = try TestDatabase.settings(statementTimeout: 300_000)
        settings["dbname"] = dbName
        let repository = "/" + #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
        try Migrator(migrations: Migrator.load(directory: repository + "/Migrations"))
            .migrate(BlockingPostgresConnection(settings), logger: Logger(label: "test"))

        var configuration = PostgresPoolConfiguration()
        configuration.acquireTimeout = .seconds(30)
        configuration.requestTimeout = .seconds(300)  // this test is about the loop, not deadlines
        // The service's router plus one route that reads the todos table through the pool.
        let groupHolder = try LoopGroupHolder()
        let database = PostgresDatabase(loops: groupHolder.group.loops, writer: settings, reader: nil,
                                        configuration: configuration, logger: Logger(label: "test"))
        var router = Application.makeRouter(database: database)
        router.add(.get, "/count", .async { _ in
            do {
                let count = try await database.query("SELECT count(*) FROM todos").int(0, 0) ?? -1
                return .json(.ok, Array("{\"count\":\(count)}".utf8))
            } catch {
                return .problem(.serviceUnavailable, detail: "database unavailable")
            }
        })
        let server = try LiveServer(router: router, group: groupHolder.group)
        database.start()
        defer { database.shutdown() }

        let locker = try TestDatabase.admin(try TestDatabase.adminURL().replacingDatabase(with: dbName))
        try locker.execute(script: "BEGIN; LOCK TABLE todos IN ACCESS EXCLUSIVE MODE")
        let waiting = try (0..<50).map { _ in try TestClient(port: server.port, receiveTimeout: .seconds(300)) }
        for client in waiting { try client.send("GET /count HTTP/1.1\r\nHost: t\r\n\r\n") }
        usleep(300_000)

        let started = MonotonicTime.now()
        let health = try TestClient(port: server.port)
        try health.send("GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        let response = try health.readResponse()
        let latency = MonotonicTime.now() - started
        #expect(response.status == 200)
        // Answered while every one of the 50 is still waiting on the lock.
        #expect(waiting.allSatisfy { !$0.hasData })
        print("GET /health with 50 requests blocked on the database: \(latency.nanoseconds / 1000) µs")

        try locker.execute(script: "COMMIT")
        for client in waiting {
            let answer = try client.readResponse()
            #expect(answer.status == 200)
            #expect(answer.text == #"{"count":0}"#)
        }
    }
}

/// Owns an event-loop group shared by a server and a database in one test.
final class LoopGroupHolder {
    let group: EventLoopGroup
    init() throws { group = try EventLoopGroup(count: 2) }
}

extension String {
    /// `postgresql:///todo?host=...` → `postgresql:///<name>?host=...`
    func replacingDatabase(with name: String) -> String {
        guard hasPrefix("postgresql:///"), let query = firstIndex(of: "?") else { return self }
        return "postgresql:///" + name + String(self[query...])
    }
}
