import Glibc
import Net
@testable import Postgres
import Testing
import TestSupport

/// Against the second test cluster, which these tests stop, restart and reach over TLS; serialized
/// so that one restart does not land in the middle of another test.
@Suite(.serialized) struct PostgresFaultTests {
    static func chaosURL() throws -> String { try TestDatabase.environment("TEST_CHAOS_DATABASE_URL") }

    static func pgCtl(_ action: String) throws {
        let pgCtl = try TestDatabase.environment("TEST_CHAOS_PG_CTL")
        let dir = try TestDatabase.environment("TEST_CHAOS_PG_DIR")
        let asOwner = getuid() == 0 ? "runuser -u postgres -- " : ""
        let logfile = action == "start" ? "-l '\(dir)/postgres.log'" : ""
        let rc = system("\(asOwner)'\(pgCtl)' -D '\(dir)/data' \(logfile) -m fast -w \(action) >/dev/null 2>&1")
        #expect(rc == 0, "pg_ctl \(action) failed")
    }

    @Test func verifyFullTLSWithPrivateCA() async throws {
        let ca = try TestDatabase.environment("TEST_CHAOS_TLS_CA")
        // `localhost`, not 127.0.0.1: the name is resolved off the loop and checked against the
        // certificate (verify-full), while libpq connects to the resolved hostaddr.
        let url = try Self.chaosURL().replacingOccurrences("127.0.0.1", "localhost") + "?sslmode=verify-full&sslrootcert=\(ca)"
        let db = try LoopDatabase(settings: TestDatabase.settings(url))
        let result = try await db.run { try await $0.query("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()") }
        #expect(result.bool(0, 0) == true)
        #expect(result.string(0, 1)?.hasPrefix("TLS") == true)
    }

    @Test func verifyFullRefusesAnUnknownCA() async throws {
        let url = try Self.chaosURL().replacingOccurrences("127.0.0.1", "localhost") + "?sslmode=verify-full&sslrootcert=/etc/ssl/certs/ca-certificates.crt"
        let db = try LoopDatabase(settings: TestDatabase.settings(url))
        let error = try await db.run { database -> PostgresError? in
            do { _ = try await database.query("SELECT 1"); return nil } catch let error as PostgresError { return error }
        }
        #expect(error?.kind == .unavailable)
        #expect(error?.message.contains("certificate") == true)
    }

    @Test func restartWhileInUseThenRecoverWithoutRestartingTheProcess() async throws {
        let db = try LoopDatabase(settings: TestDatabase.settings(Self.chaosURL())) { $0.reconnectCap = .milliseconds(500) }
        #expect(try await db.run { try await $0.query("SELECT 1").int(0, 0) } == 1)

        try Self.pgCtl("stop")
        // Down: queries fail, explicitly and fast (no hang, no crash).
        for _ in 0..<3 {
            let error = try await db.run { database -> PostgresError? in
                do { _ = try await database.query("SELECT 1"); return nil } catch let error as PostgresError { return error }
            }
            #expect(error?.isTransient == true)
        }
        // Readiness says why.
        let notReady = try await db.run { await $0.ping(timeout: .seconds(1)) }
        #expect(notReady?.hasPrefix("database:") == true)

        try Self.pgCtl("start")
        // Back: the same pool recovers by itself, and readiness flips back.
        let value = try await eventually { try await db.run { try await $0.query("SELECT 2").int(0, 0) } }
        #expect(value == 2)
        let ready = try await db.run { await $0.ping(timeout: .seconds(1)) }
        #expect(ready == nil)
    }
}

extension PostgresFaultTests {
    /// The failover drill: under write load the writer turns read-only (SQLSTATE 25006 on every
    /// write, as a demoted Aurora writer answers), stays so for 6 s, then is writable again (the
    /// failover done). Counts new connections and database log lines over the whole event.
    @Test func readOnlyWriterThenFailoverWithoutAStorm() async throws {
        // The chaos cluster's superuser over its Unix socket: ALTER SYSTEM needs one.
        let port = try TestDatabase.settings(Self.chaosURL())["port"] ?? "5432"
        let admin = try TestDatabase.admin("postgresql:///todo?host=\(try TestDatabase.environment("TEST_CHAOS_PG_DIR"))&port=\(port)&user=postgres")
        let table = TestDatabase.uniqueName("failover")
        try admin.execute(script: "CREATE TABLE \(table) (x int); GRANT INSERT ON \(table) TO todo")
        // The admin session itself stays writable whatever the system default becomes.
        try admin.execute(script: "SET default_transaction_read_only = off")
        let capture = LogCapture()
        let group = try EventLoopGroup(count: 2)
        var configuration = PostgresPoolConfiguration()
        configuration.minConnections = 2
        configuration.maxConnections = 8
        let database = PostgresDatabase(loops: group.loops, writer: try TestDatabase.settings(Self.chaosURL()), reader: nil,
                                        configuration: configuration, logger: capture.logger())
        try group.start()
        database.start()
        defer {
            database.shutdown()
            usleep(20_000)
            group.shutdown()
        }
        func onLoop<T: Sendable>(_ index: Int, _ body: @escaping @Sendable (PostgresDatabase) async throws -> T) async throws -> T {
            try await Task(executorPreference: group.loops[index]) { try await body(database) }.value
        }
        // Write load on both loops: 16 writers, each inserting in a loop.
        let stop = Counter()
        let writers = Task {
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                for i in 0..<16 {
                    tasks.addTask {
                        try await onLoop(i % 2) { database in
                            while stop.value == 0 {
                                _ = try? await database.query(PostgresQuery(stringLiteral: "INSERT INTO \(table) VALUES (1)"))
                                await EventLoop.current!.sleep(.milliseconds(5))
                            }
                        }
                    }
                }
                try await tasks.waitForAll()
            }
        }
        _ = try await eventually { try await onLoop(0) { try await $0.query("SELECT 1").int(0, 0)! } }
        usleep(500_000)
        let openedBefore = await database.statistics().opened
        let linesBefore = capture.all.count

        // The writer turns read-only for every session (a reload reaches the open ones too).
        try admin.execute(script: "ALTER SYSTEM SET default_transaction_read_only = on")
        try admin.execute(script: "SELECT pg_reload_conf()")
        let sawReadOnly = try await eventually { () async throws -> Bool in
            guard database.writerIsReadOnly else { throw TestSetupError.missing("no 25006 yet") }
            return true
        }
        #expect(sawReadOnly)
        let notReady = try await onLoop(0) { await $0.ping(timeout: .seconds(2)) }
        #expect(notReady?.contains("read-only") == true)
        usleep(6_000_000)

        // The failover is done: a writable writer.
        try admin.execute(script: "ALTER SYSTEM RESET default_transaction_read_only")
        try admin.execute(script: "SELECT pg_reload_conf()")
        let ready = try await eventually(attempts: 200) { () async throws -> Bool in
            guard !database.writerIsReadOnly, try await onLoop(1, { await $0.ping(timeout: .seconds(2)) }) == nil else {
                throw TestSetupError.missing("not ready yet")
            }
            return true
        }
        #expect(ready)
        let inserted = try await eventually { try await onLoop(1) { try await $0.query(PostgresQuery(stringLiteral: "INSERT INTO \(table) VALUES (2)")).affectedRows } }
        #expect(inserted == 1)
        usleep(2_000_000)  // the replacement of the writer connections settles
        stop.increment()
        try await writers.value

        let opened = await database.statistics().opened - openedBefore
        let lines = Array(capture.all.dropFirst(linesBefore))
        print("read-only writer 6 s under write load, then writable: \(opened) new connections (DB_POOL_MAX 8), \(lines.count) database log lines: "
              + lines.map { "\($0.level) \($0.metadata["event"] ?? "-")×\($0.metadata["count"] ?? "-")" }.joined(separator: ", "))
        #expect(opened <= 2 * configuration.maxConnections)
        #expect(lines.count <= 30)
        #expect(lines.contains { $0.metadata["event"] == "writer_read_only" && $0.metadata["sqlstate"] == "25006" && $0.level == .error })
        #expect(lines.contains { $0.metadata["event"] == "writer_recovered" })
        #expect(lines.allSatisfy { $0.level < .error || $0.metadata["sqlstate"] != nil || $0.metadata["event"] == "connect_failed" || $0.metadata["event"] == "connection_lost" })
    }
}

extension String {
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
