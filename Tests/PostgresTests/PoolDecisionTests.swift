import Net
@testable import Postgres
import Testing

/// The pool's shared decisions with a manual clock, no database: row write queues, the new
/// connection budget, the writer's failover and the failure log's throttle.
@Suite struct PoolDecisionTests {
    static let t0 = MonotonicTime(nanoseconds: 1_000_000_000_000)
    static func at(_ ms: Int64) -> MonotonicTime { t0 + .milliseconds(ms) }

    static func write() -> PendingQuery {
        PendingQuery("UPDATE todos SET title = 'x'", submitted: t0, deadline: at(3000)) { _ in }
    }

    @Test func writesToOneRowGoOneAtATime() {
        var queues = RowWriteQueues()
        let first = Self.write(), second = Self.write(), third = Self.write(), other = Self.write()
        let value1 = queues.admit("a", first)
        #expect(value1)
        let value2 = queues.admit("a", second)
        #expect(!value2)
        let value3 = queues.admit("a", third)
        #expect(!value3)
        let value4 = queues.admit("b", other)
        #expect(value4)
        #expect(queues.waiting == 2)
        // The second timed out while waiting: skipped.
        second.finish(.failure(PostgresError(.timedOut, message: "deadline")))
        let value5 = queues.finished("a")
        #expect(value5 === third)
        #expect(queues.waiting == 0)
        let value6 = queues.finished("a")
        #expect(value6 == nil)
        // Free again.
        let value7 = queues.admit("a", Self.write())
        #expect(value7)
    }

    /// A commit group takes its rows' locks in one order everywhere (`RowKey.precedesInLockOrder`):
    /// the bytes, letters folded to lower case (a UUID in either case names one row), stable.
    @Test func rowWritesAreSortedInLockOrder() {
        let keys = ["6f1c1d5e-8a3b-4c2d-9e0f-0123456789ab", "0A1b2c3d-0000-4000-8000-000000000000", "6F1C1D5E-8A3B-4C2D-9E0F-0123456789AA",
                    "b", "0a1B2c3d-0000-4000-8000-000000000000", "a"]
        var writes = keys.map { Self.write().query.changing(row: $0) }.map { PendingQuery($0, submitted: Self.t0, deadline: Self.at(3000)) { _ in } }
        let original = writes
        RowKey.sortInLockOrder(&writes)
        #expect(writes.map { $0.query.rowKey!.text } == [
            "0A1b2c3d-0000-4000-8000-000000000000", "0a1B2c3d-0000-4000-8000-000000000000",
            "6F1C1D5E-8A3B-4C2D-9E0F-0123456789AA", "6f1c1d5e-8a3b-4c2d-9e0f-0123456789ab", "a", "b",
        ])
        // Stable: of the two spellings of one row, the first submitted stays first.
        #expect(writes[0] === original[1] && writes[1] === original[4])
        #expect(RowKey.precedesInLockOrder("ab", "abc") && !RowKey.precedesInLockOrder("abc", "ab"))
        #expect(!RowKey.precedesInLockOrder("A", "a") && !RowKey.precedesInLockOrder("a", "A"))
        #expect(RowKey.precedesInLockOrder("Z", "a") == false && RowKey.precedesInLockOrder("a", "Z"))
    }

    @Test func theConnectionBudgetRefills() {
        var budget = ConnectionBudget(capacity: 4, refillPeriod: .seconds(4), now: Self.t0)
        for _ in 0..<4 { let value8 = budget.take(now: Self.t0); #expect(value8 == nil) }
        let wait = budget.take(now: Self.t0)
        #expect(wait == .seconds(1))
        let value9 = budget.take(now: Self.at(999))
        #expect(value9 != nil)
        let value10 = budget.take(now: Self.at(1000))
        #expect(value10 == nil)
    }

    @Test func aReadOnlyWriterIsProbedWithDoublingDelaysAndReplacedOnce() {
        var failover = WriterFailover(rules: .init(firstProbe: .seconds(1), probeCap: .seconds(5), recycleInterval: .seconds(10)))
        #expect(failover.opensAllowed)
        let value11 = failover.sawReadOnly(now: Self.at(0))
        #expect(value11 == [.enteredReadOnly, .probe(at: Self.at(1000))])
        // Every further 25006 is the same event.
        let value12 = failover.sawReadOnly(now: Self.at(10))
        #expect(value12.isEmpty)
        #expect(!failover.opensAllowed)
        let value13 = failover.connectionLost(now: Self.at(20))
        #expect(value13.isEmpty)
        let value14 = failover.probeFinished(writable: false, now: Self.at(1000))
        #expect(value14 == [.probe(at: Self.at(3000))])
        let value15 = failover.probeFinished(writable: false, now: Self.at(3000))
        #expect(value15 == [.probe(at: Self.at(7000))])
        let value16 = failover.probeFinished(writable: false, now: Self.at(7000))
        #expect(value16 == [.probe(at: Self.at(12000))])
        let value17 = failover.probeFinished(writable: true, now: Self.at(12000))
        #expect(value17 == [.recycle, .recovered(after: .seconds(12))])
        #expect(failover.opensAllowed)
        // A lost connection right after the recycle does not recycle again.
        let value18 = failover.connectionLost(now: Self.at(13000))
        #expect(value18.isEmpty)
        let value19 = failover.connectionLost(now: Self.at(22000))
        #expect(value19 == [.recycle])
    }

    @Test func aFailoverCostsAtMostTwicePoolMaxNewConnections() {
        // Writer read-only for 30 s, then writable: probes (one connection each) plus one
        // replacement of the pool (at most DB_POOL_MAX).
        let poolMax = 8
        var failover = WriterFailover()
        var connections = 0
        var pending = failover.sawReadOnly(now: Self.at(0))
        var now = Self.at(0)
        while let probe = pending.compactMap({ if case .probe(let at) = $0 { at } else { nil } }).first {
            now = probe
            connections += 1
            pending = failover.probeFinished(writable: now >= Self.at(30_000), now: now)
        }
        #expect(pending.contains(.recycle))
        connections += poolMax
        #expect(connections <= 2 * poolMax)
    }

    @Test func oneLinePerCauseThenSummaries() {
        var throttle = FaultLogThrottle(interval: .seconds(10))
        let timeout = FaultLogThrottle.Cause(event: "request_timeout", sqlState: nil)
        let lock = FaultLogThrottle.Cause(event: "statement_timeout", sqlState: "57014")
        let value20 = throttle.report(timeout, message: "m", host: "h", now: Self.at(0))
        #expect(value20?.affected == 1)
        for i in 1...500 { let value21 = throttle.report(timeout, message: "m", host: "h", now: Self.at(Int64(i))); #expect(value21 == nil) }
        // Another cause gets its own first line.
        let value22 = throttle.report(lock, message: "canceling statement due to statement timeout", host: "h", now: Self.at(600))
        #expect(value22 != nil)
        let value23 = throttle.due(now: Self.at(9_999))
        #expect(value23.isEmpty)
        let summaries = throttle.due(now: Self.at(10_000))
        #expect(summaries.count == 1)
        #expect(summaries.first?.affected == 500 && summaries.first?.isSummary == true)
        // Quiet for an interval: the episode ends, and the next occurrence is logged at once.
        let value24 = throttle.due(now: Self.at(20_000))
        #expect(value24.isEmpty)
        let value25 = throttle.report(timeout, message: "m", host: "h", now: Self.at(21_000))
        #expect(value25 != nil)
    }
}
