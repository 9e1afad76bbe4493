import Dispatch
import Glibc
import Logging
@testable import Postgres
import Synchronization
import Testing
import TestSupport

@Suite struct MigrationTests {
    /// A fresh database of its own and a directory of migration files.
    final class Fixture {
        let admin: BlockingPostgresConnection
        let database = TestDatabase.uniqueName("migrate")
        let directory: String
        let settings: PostgresConnectionSettings

        init() throws {
            admin = try TestDatabase.admin()
            try admin.execute(script: "CREATE DATABASE \(database) OWNER todo")
            var template = Array("/tmp/migrations-XXXXXX".utf8CString)
            directory = String(cString: mkdtemp(&template)!)
            var settings = try TestDatabase.settings()
            settings["dbname"] = database
            self.settings = settings
        }

        func write(_ name: String, _ sql: String) {
            let file = fopen("\(directory)/\(name)", "w")!
            fputs(sql, file)
            fclose(file)
        }

        func migrate() throws -> [String] {
            let migrator = Migrator(migrations: try Migrator.load(directory: directory))
            return try migrator.migrate(BlockingPostgresConnection(settings), logger: Logger(label: "test"))
        }

        deinit {
            _ = system("rm -rf '\(directory)'")
        }
    }

    @Test func appliesInNumericOrderOnce() throws {
        let fixture = try Fixture()
        // Written out of order; 0010 needs 0002's table, 0002 needs 0001's.
        fixture.write("0010_index.sql", "CREATE INDEX b_x ON b (x);")
        fixture.write("0001_a.sql", "CREATE TABLE a (id int PRIMARY KEY);")
        fixture.write("0002_b.sql", "CREATE TABLE b (x int REFERENCES a (id)); INSERT INTO a VALUES (1);")
        fixture.write("notes.txt", "not a migration")
        #expect(try fixture.migrate() == ["0001_a.sql", "0002_b.sql", "0010_index.sql"])
        #expect(try fixture.migrate() == [])
        let recorded = try BlockingPostgresConnection(fixture.settings).query("SELECT version, checksum FROM schema_migrations ORDER BY version")
        #expect(recorded.rowCount == 3)
        #expect(recorded.int(2, 0) == 10)
        #expect(recorded.string(0, 1)?.count == 64)
    }

    @Test func editedAppliedMigrationIsRefused() throws {
        let fixture = try Fixture()
        fixture.write("0001_a.sql", "CREATE TABLE a (id int);")
        _ = try fixture.migrate()
        fixture.write("0001_a.sql", "CREATE TABLE a (id bigint);")
        fixture.write("0002_b.sql", "CREATE TABLE b (id int);")
        #expect {
            _ = try fixture.migrate()
        } throws: { error in
            "\(error)".contains("0001_a.sql") && "\(error)".contains("changed after it was applied")
        }
        // Nothing after the refused one was applied.
        let tables = try BlockingPostgresConnection(fixture.settings).query("SELECT count(*) FROM pg_tables WHERE tablename = 'b'")
        #expect(tables.int(0, 0) == 0)
    }

    @Test func failingMigrationRollsBackAndStops() throws {
        let fixture = try Fixture()
        fixture.write("0001_a.sql", "CREATE TABLE a (id int); SELECT 1/0;")
        #expect(throws: MigrationError.self) { _ = try fixture.migrate() }
        let tables = try BlockingPostgresConnection(fixture.settings).query("SELECT count(*) FROM pg_tables WHERE tablename = 'a'")
        #expect(tables.int(0, 0) == 0)
    }

    @Test func concurrentRunsApplyEachMigrationOnce() throws {
        let fixture = try Fixture()
        fixture.write("0001_slow.sql", "CREATE TABLE slow (id int); SELECT pg_sleep(0.3);")
        fixture.write("0002_count.sql", "CREATE TABLE runs (n int); INSERT INTO runs VALUES (1);")
        let applied = Mutex<[[String]]>([])
        let group = DispatchGroup()
        for _ in 0..<3 {
            DispatchQueue.global().async(group: group) {
                let names = (try? fixture.migrate()) ?? ["failed"]
                applied.withLock { $0.append(names) }
            }
        }
        group.wait()
        let all = applied.withLock { $0 }
        #expect(all.flatMap { $0 }.sorted() == ["0001_slow.sql", "0002_count.sql"])
        let runs = try BlockingPostgresConnection(fixture.settings).query("SELECT count(*) FROM runs")
        #expect(runs.int(0, 0) == 1)
    }

    @Test func theRepositoryMigrationsApply() throws {
        let fixture = try Fixture()
        let repository = String(#filePath.split(separator: "/").dropLast(3).joined(separator: "/"))
        let migrator = Migrator(migrations: try Migrator.load(directory: "/\(repository)/Migrations"))
        #expect(!migrator.migrations.isEmpty)
        let applied = try migrator.migrate(BlockingPostgresConnection(fixture.settings), logger: Logger(label: "test"))
        #expect(applied.first == "0001_create_todos.sql")
        let columns = try BlockingPostgresConnection(fixture.settings)
            .query("SELECT count(*) FROM information_schema.columns WHERE table_name = 'todos'")
        #expect(columns.int(0, 0) == 10, "the nine of 0001 and the owner of 0003")
        let keys = try BlockingPostgresConnection(fixture.settings).query("""
            SELECT string_agg(a.attname, ',' ORDER BY array_position(i.indkey, a.attnum))
            FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
            WHERE i.indrelid = 'idempotency_keys'::regclass AND i.indisprimary
            """)
        #expect(keys.string(0, 0) == "owner,key", "idempotency keys are per owner")

        // 0004, then 0005: no CHECK constraint is parsed per statement, and no domain check is
        // set up per execution but the title's; the rules still refuse what they refused. Too long:
        // 22001 (varchar(n), counted in characters as char_length counted); an empty title: 23514.
        let connection = try BlockingPostgresConnection(fixture.settings)
        let checks = try connection.query("SELECT count(*) FROM pg_constraint WHERE conrelid = 'todos'::regclass AND contype = 'c'")
        #expect(checks.int(0, 0) == 0)
        let domains = try connection.query("SELECT count(*) FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid WHERE a.attrelid = 'todos'::regclass AND t.typtype = 'd'")
        #expect(domains.int(0, 0) == 1, "the title's")
        func sqlState(_ query: PostgresQuery) -> String? {
            do { _ = try connection.query(query); return nil } catch { return error.sqlState }
        }
        #expect(sqlState("INSERT INTO todos (title) VALUES (\(""))") == "23514")
        #expect(sqlState("INSERT INTO todos (title) VALUES (\(String(repeating: "t", count: 201)))") == "22001")
        #expect(sqlState("INSERT INTO todos (title, description) VALUES ('t', \(String(repeating: "d", count: 2001)))") == "22001")
        #expect(sqlState("INSERT INTO todos (title, priority) VALUES ('t', \(String(repeating: "p", count: 33)))") == "22001")
        #expect(sqlState("INSERT INTO todos (title, owner) VALUES ('t', \(String(repeating: "o", count: 257)))") == "22001")
        // Characters, not bytes: 200 two-byte characters fit.
        #expect(sqlState("INSERT INTO todos (title, description, priority, owner) VALUES (\(String(repeating: "é", count: 200)), \(String(repeating: "d", count: 2000)), 'high', \(String(repeating: "o", count: 256)))") == nil)
        #expect(sqlState("UPDATE todos SET title = \("") WHERE true") == "23514")
        #expect(sqlState("UPDATE todos SET title = \(String(repeating: "t", count: 201)) WHERE true") == "22001")
        // Bound as text and assigned in the plan (how the service's open creates bind them): the
        // same rules; a value too long is refused, never cut (only an explicit cast cuts).
        #expect(sqlState("INSERT INTO todos (title) VALUES (\("")::text)") == "23514")
        #expect(sqlState("INSERT INTO todos (title) VALUES (\(String(repeating: "t", count: 201))::text)") == "22001")
        #expect(sqlState("INSERT INTO todos (title, description) VALUES ('t', \(String(repeating: "d", count: 2001))::text)") == "22001")
        #expect(sqlState("INSERT INTO todos (title, priority) VALUES ('t', \(String(repeating: "p", count: 33))::text)") == "22001")
        #expect(sqlState("INSERT INTO todos (title, description, priority, owner) VALUES (\("t")::text, \(nil as String?)::text, \("low")::text, \("o")::text)") == nil)
    }
}

extension MigrationTests.Fixture: @unchecked Sendable {}
