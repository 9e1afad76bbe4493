import Glibc
import HTTP
import Net
import Postgres
import Testing
import TestSupport
@testable import TodoAPI

/// The database-fault drills as live tests: the real service on real sockets, a real PostgreSQL,
/// concurrent keep-alive clients (`FaultLoad`). No timing is asserted against a wall-clock target:
/// each test asserts orders of events that only hold when the deadline, not the fault, ended
/// the wait (answered before the lock was released, before the path came back), and prints the
/// measured latencies for the record.
@Suite struct DatabaseFaultTests {
    static func seconds(_ s: Double) -> TimeSpan { TimeSpan(nanoseconds: Int64(s * 1e9)) }

    /// 60 % GET by id, 20 % POST, 20 % list: the drill's mix.
    static func mix(_ ids: [String]) -> @Sendable (Int, Int) -> FaultLoad.Request {
        { client, iteration in
            switch (client + iteration) % 5 {
            case 0, 1, 2: FaultLoad.Request(kind: "get", method: "GET", path: "/todos/\(ids[(client * 7 + iteration) % ids.count])")
            case 3: FaultLoad.Request(kind: "post", method: "POST", path: "/todos", json: #"{"title":"drill"}"#)
            default: FaultLoad.Request(kind: "list", method: "GET", path: "/todos?limit=5")
            }
        }
    }

    static func createTodos(_ api: TodoServer, _ count: Int) throws -> [String] {
        try (0..<count).map { i in
            let response = try api.send("POST", "/todos", json: #"{"title":"seed \#(i)"}"#)
            guard response.status == 201, let id = response.field("id") else { throw TestSetupError.missing("seed failed: \(response.status)") }
            return id
        }
    }

    static func locker(_ api: TodoServer) throws -> BlockingPostgresConnection {
        try TestDatabase.admin(try TestDatabase.adminURL().replacingDatabase(with: api.databaseName))
    }

    /// The checks every fault window shares: every request answered, none with 500, and those that
    /// began while the fault still had 2 s to last were answered before it ended (by their 1 s
    /// deadline, not by the fault). Returns those.
    static func boundedByTheDeadline(_ exchanges: [FaultLoad.Exchange], faultFrom start: MonotonicTime,
                                     until end: MonotonicTime) -> [FaultLoad.Exchange] {
        #expect(!exchanges.contains { $0.status == 0 }, "every request answered")
        #expect(!exchanges.contains { $0.status == 500 }, "no 500")
        let during = exchanges.filter { $0.start >= start && $0.start + .seconds(2) <= end }
        #expect(during.count > 0)
        #expect(during.allSatisfy { $0.end < end }, "answered while the fault lasted")
        return during
    }

    @Test func tableLockedPastTheDeadlineIsAnswered503InTime() throws {
        let timeout = Self.seconds(1)
        let api = try TodoServer(configure: { $0.requestTimeout = timeout; $0.acquireTimeout = timeout })
        let ids = try Self.createTodos(api, 20)
        let load = FaultLoad(server: api, clients: 8, next: Self.mix(ids))
        usleep(500_000)
        let locker = try Self.locker(api)
        try locker.execute(script: "BEGIN; LOCK TABLE todos IN ACCESS EXCLUSIVE MODE")
        let lockedAt = MonotonicTime.now()
        usleep(6_000_000)
        let releasedAt = MonotonicTime.now()
        try locker.execute(script: "COMMIT")
        usleep(1_000_000)
        let exchanges = load.stop()

        // Their deadline (1 s) ended them, not the lock (6 s). Before, they waited for the lock.
        let during = Self.boundedByTheDeadline(exchanges, faultFrom: lockedAt, until: releasedAt)
        #expect(during.contains { $0.status == 503 })
        #expect(exchanges.contains { $0.start > releasedAt && $0.status == 201 }, "writes succeed after the lock")
        let worst = during.map { $0.latency }.max() ?? TimeSpan(nanoseconds: 0)
        print("table lock 6 s, DB_REQUEST_TIMEOUT 1 s: during the lock \(FaultLoad.summary(during)); worst \(worst.milliseconds) ms")
    }

    @Test func aLockedRowDelaysOnlyItsOwnWrites() throws {
        let timeout = Self.seconds(2)
        let api = try TodoServer(configure: { $0.requestTimeout = timeout })
        let ids = try Self.createTodos(api, 21)
        let locked = ids[0], others = Array(ids.dropFirst())
        let locker = try Self.locker(api)
        try locker.execute(script: "BEGIN; SELECT * FROM todos WHERE id = '\(locked)' FOR UPDATE")
        let patchers = FaultLoad(server: api, clients: 8) { _, _ in
            FaultLoad.Request(kind: "locked", method: "PATCH", path: "/todos/\(locked)", json: #"{"title":"contended"}"#)
        }
        usleep(300_000)
        let unrelated = FaultLoad(server: api, clients: 4) { client, iteration in
            let id = others[(client * 5 + iteration) % others.count]
            switch iteration % 3 {
            case 0: return FaultLoad.Request(kind: "get", method: "GET", path: "/todos/\(id)")
            case 1: return FaultLoad.Request(kind: "patch", method: "PATCH", path: "/todos/\(id)", json: #"{"completed":true}"#)
            default: return FaultLoad.Request(kind: "post", method: "POST", path: "/todos", json: #"{"title":"beside"}"#)
            }
        }
        usleep(6_000_000)
        let others_ = unrelated.stop()
        try locker.execute(script: "COMMIT")
        let contended = patchers.stop()

        #expect(others_.count > 50)
        #expect(others_.allSatisfy { (200..<300).contains($0.status) }, "requests for other rows all succeed")
        // None waited behind the lock: that would have taken the request deadline (2 s).
        let worst = others_.map { $0.latency }.max() ?? TimeSpan(nanoseconds: 0)
        #expect(worst < timeout)
        for slow in others_ where slow.latency >= .milliseconds(500) {
            print("row lock: slow unrelated \(slow.kind) \(slow.status) \(slow.latency.milliseconds) ms")
        }
        #expect(contended.contains { $0.status == 503 }, "writes to the locked row end at their deadline")
        #expect(!contended.contains { $0.status == 500 || $0.status == 0 })
        print("row locked 6 s, 8 clients updating it: other rows \(FaultLoad.summary(others_)); the locked row \(FaultLoad.summary(contended))")
    }

    @Test func aFrozenPathIsBoundedAndRecoveredWithoutRestart() throws {
        let timeout = Self.seconds(1)
        let port = try Int(TestDatabase.settings()["port"] ?? "") ?? 5432
        let proxy = try FreezableProxy(targetPort: port)
        defer { proxy.stop() }
        let api = try TodoServer(settingsOverride: { settings in
            var through = settings
            through["port"] = String(proxy.port)
            return through
        }) { $0.requestTimeout = timeout; $0.acquireTimeout = timeout }
        let ids = try Self.createTodos(api, 20)
        let load = FaultLoad(server: api, clients: 8, next: Self.mix(ids))
        usleep(1_000_000)
        proxy.freeze()
        let frozenAt = MonotonicTime.now()
        usleep(6_000_000)
        let thawedAt = MonotonicTime.now()
        proxy.thaw()
        usleep(5_000_000)
        let exchanges = load.stop()

        let during = Self.boundedByTheDeadline(exchanges, faultFrom: frozenAt, until: thawedAt)
        #expect(during.allSatisfy { $0.status == 503 })
        // Recovered by itself: the last seconds are all successes again.
        let firstSuccess = exchanges.filter { $0.end > thawedAt && $0.status < 300 }.map(\.end).min()
        #expect(firstSuccess != nil)
        let late = exchanges.filter { $0.start >= thawedAt + .seconds(3) }
        #expect(!late.isEmpty && late.allSatisfy { $0.status < 300 }, "full recovery after the path came back")
        let recovery = firstSuccess.map { ($0 - thawedAt).milliseconds } ?? -1
        let worst = during.map { $0.latency }.max() ?? TimeSpan(nanoseconds: 0)
        print("path frozen 6 s, DB_REQUEST_TIMEOUT 1 s: during \(FaultLoad.summary(during)), worst \(worst.milliseconds) ms; "
              + "first success \(recovery) ms after the thaw; after 3 s \(FaultLoad.summary(late))")
    }

    @Test func aPrepareTimedOutBehindQueuedStatementsIsNever500() throws {
        // A freshly started service (nothing prepared yet), a lock longer than statement_timeout:
        // every statement's first Prepare times out. Before, statements queued behind a timed-out
        // Prepare got 26000 "prepared statement does not exist", answered 500.
        let api = try TodoServer(statementTimeout: 700) { $0.requestTimeout = .seconds(10) }
        let locker = try Self.locker(api)
        try locker.execute(script: "BEGIN; LOCK TABLE todos IN ACCESS EXCLUSIVE MODE")
        let load = FaultLoad(server: api, clients: 12) { client, _ in
            client % 2 == 0 ? FaultLoad.Request(kind: "post", method: "POST", path: "/todos", json: #"{"title":"during"}"#)
                : FaultLoad.Request(kind: "list", method: "GET", path: "/todos?limit=3")
        }
        usleep(2_500_000)
        try locker.execute(script: "COMMIT")
        usleep(500_000)
        let exchanges = load.stop()
        #expect(!exchanges.contains { $0.status == 500 || $0.status == 0 })
        #expect(exchanges.allSatisfy { [200, 201, 503].contains($0.status) })
        #expect(exchanges.contains { $0.status == 201 })
        print("prepare timed out behind queued statements: \(FaultLoad.summary(exchanges))")
    }
}
