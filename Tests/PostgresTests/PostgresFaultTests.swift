import Glibc
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

extension String {
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
