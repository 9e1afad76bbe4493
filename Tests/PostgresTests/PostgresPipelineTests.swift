import Net
@testable import Postgres
import Testing

/// The connection's decisions with a manual clock, no database: the isolation rule, deadlines,
/// cancels and giving a connection up: the table-lock, row-lock and frozen-path scenarios as the
/// connection sees them.
@Suite struct PostgresPipelineTests {
    static let t0 = MonotonicTime(nanoseconds: 1_000_000_000_000)
    static func at(_ ms: Int64) -> MonotonicTime { t0 + .milliseconds(ms) }

    /// `write`: an UPDATE of an existing row (it names the row); `insert`: a plain INSERT.
    static func query(write: Bool = false, insert: Bool = false, deadline ms: Int64 = 3000, finished: Box? = nil) -> PendingQuery {
        var statement: PostgresQuery = write ? PostgresQuery("UPDATE todos SET title = 'x' WHERE id = \("a")").changing(row: "a")
            : insert ? "INSERT INTO todos (title) VALUES ('x')" : "SELECT 1"
        statement.readOnly = !write && !insert
        return PendingQuery(statement, submitted: t0, deadline: at(ms)) { result in finished?.results.append(result) }
    }

    final class Box { var results: [Result<PostgresResult, PostgresError>] = [] }

    @Test func anIdleConnectionTakesAnything() {
        let pipeline = PostgresPipeline(rules: .init(), now: Self.t0)
        #expect(pipeline.acceptsWork(now: Self.t0))
    }

    @Test func readsArePipelinedWhileTheConnectionAnswers() {
        var pipeline = PostgresPipeline(rules: .init(), now: Self.t0)
        pipeline.sent(Self.query(), now: Self.at(0))
        pipeline.sent(Self.query(), now: Self.at(1))
        #expect(pipeline.acceptsWork(now: Self.at(9)))
        // No answer for the stall threshold (10 ms): the head may be blocked; new work goes
        // elsewhere.
        #expect(!pipeline.acceptsWork(now: Self.at(10)))
        _ = pipeline.answered(now: Self.at(11))
        #expect(pipeline.acceptsWork(now: Self.at(11)))
        // A deep pipeline that keeps answering stays open, though its head waited its turn
        // longer than the threshold.
        pipeline.sent(Self.query(), now: Self.at(12))
        _ = pipeline.answered(now: Self.at(19))
        #expect(pipeline.acceptsWork(now: Self.at(25)))
        #expect(!pipeline.acceptsWork(now: Self.at(29)))
    }

    @Test func aRowWriteBlockingStatementsBehindItIsCancelledAndIsolated() {
        // The row-lock scenario: an UPDATE waits on a locked row, and statements sent while it
        // was young are queued behind it.
        var pipeline = PostgresPipeline(rules: .init(rowLockGrace: .milliseconds(30)), now: Self.t0)
        let update = Self.query(write: true)
        pipeline.sent(update, now: Self.at(0))
        #expect(pipeline.rescueCheck == nil)  // nothing behind it: nothing to rescue
        #expect(pipeline.acceptsWork(now: Self.at(1)))
        pipeline.sent(Self.query(), now: Self.at(1))
        #expect(pipeline.rescueCheck == Self.at(30))
        var check = pipeline.check(now: Self.at(29))
        #expect(!check.cancel && check.next == Self.at(30))
        check = pipeline.check(now: Self.at(30))
        #expect(check.cancel && check.rescue && !check.giveUp)
        // The next try is armed (nothing else would wake a stalled connection before the deadline).
        #expect(check.next == Self.at(80))
        #expect(pipeline.rescueCheck == Self.at(80))
        // The cancel has not reached the server yet (its own connection is slow): no second one,
        // which would only land later, on whatever runs then. Looked at again after a grace.
        check = pipeline.check(now: Self.at(80))
        #expect(!check.cancel && check.next == Self.at(130))
        // It reached the server at 110 and the write is still unanswered a grace later: the
        // server ignored it (it arrived between two statements). Another one, up to three in all.
        #expect(!pipeline.check(now: Self.at(130), delivery: .delivered(Self.at(110))).cancel)
        #expect(pipeline.check(now: Self.at(160), delivery: .delivered(Self.at(110))).rescue)
        // The third could not be started (no free slot: none on its way): tried a grace later.
        #expect(pipeline.check(now: Self.at(180), delivery: .none).next == Self.at(210))
        #expect(pipeline.check(now: Self.at(210), delivery: .none).rescue)
        #expect(pipeline.rescueCheck == nil)
        // Its 57014 is ours: it is sent again, isolated; the read behind it runs at once.
        #expect(pipeline.mayBeOurCancel(now: Self.at(211)))
        let interrupted = PostgresError(.server, sqlState: "57014", message: "canceling statement due to user request")
        #expect(pipeline.answered(now: Self.at(211)) === update)
        #expect(update.wasInterruptedByUs(interrupted, ourCancelMayHaveLanded: pipeline.mayBeOurCancel(now: Self.at(211))))
        // Once only.
        update.resent = true
        #expect(!update.wasInterruptedByUs(interrupted, ourCancelMayHaveLanded: true))
        // A server statement timeout long after is not ours.
        #expect(!pipeline.mayBeOurCancel(now: Self.at(2000)))
    }

    /// Two row writes sent at 0 (a commit group): the first's deadline at 2 s, the second's at 20 ms.
    static func twoRowWritesSent() -> (PostgresPipeline, PendingQuery, PendingQuery) {
        var pipeline = PostgresPipeline(rules: .init(rowLockGrace: .milliseconds(30)), now: t0)
        let first = query(write: true, deadline: 2000), second = query(write: true, deadline: 20)
        pipeline.sent(first, now: at(0))
        pipeline.sent(second, now: at(0))
        return (pipeline, first, second)
    }

    /// A commit group of row writes: the first member answered (its commit waits for the sync),
    /// the second blocked on a row lock. The second's deadline passes first (it waited behind
    /// another write of its row); the head's has not. The cancel goes at once, for what runs.
    @Test func aGroupBlockedBehindItsAnsweredHeadIsCancelledAtTheBlockedDeadline() {
        var (pipeline, head, blocked) = Self.twoRowWritesSent()
        pipeline.resultArrived(head, now: Self.at(1))
        #expect(pipeline.running === blocked)
        let check = pipeline.check(now: Self.at(20))
        #expect(check.expired.count == 1 && check.expired[0] === blocked)
        #expect(check.cancel && !check.rescue && !check.giveUp)
        #expect(blocked.cancelRequested)
    }

    /// Members of one group share a deadline (sent in one iteration): when it passes, the cancel
    /// goes at once for the running member, though the answered one before it expired first.
    @Test func aGroupsSharedDeadlineCancelsTheRunningMemberAtOnce() {
        var pipeline = PostgresPipeline(rules: .init(rowLockGrace: .milliseconds(30)), now: Self.t0)
        let answered = Self.query(write: true, deadline: 100), blocked = Self.query(write: true, deadline: 100)
        pipeline.sent(answered, now: Self.at(0))
        pipeline.sent(blocked, now: Self.at(0))
        // The first member answered late (the group waited behind other work): the second's rescue
        // would be due at 120, after the deadline.
        pipeline.resultArrived(answered, now: Self.at(90))
        let check = pipeline.check(now: Self.at(100), delivery: .pending)
        #expect(check.expired.count == 2 && check.expired[0] === answered)
        #expect(check.cancel && blocked.deadlineCancels == 1)
    }

    /// Without a result, the same group: the rescue still cancels the running write while the
    /// pipeline drains (its abandoned member is behind).
    @Test func aRowWriteHoldingAnAbandonedOneBehindIsRescuedWhileDraining() {
        var (pipeline, _, behind) = Self.twoRowWritesSent()
        var check = pipeline.check(now: Self.at(20))
        behind.finish(.failure(PostgresError(.timedOut, message: "deadline")))
        #expect(pipeline.isDraining && !check.cancel && check.next == Self.at(30))
        check = pipeline.check(now: Self.at(30))
        #expect(check.cancel && check.rescue && !check.giveUp)
    }

    /// A group's members run one after another: each answer is progress, and the rescue clock
    /// starts again for the next member (from the group's first send, a long group looked like a
    /// lock wait). Once every member answered and only the commit is pending, nothing is cancelled.
    @Test func aGroupsMembersAnswersAreProgressAndItsCommitIsNeverRescued() {
        var pipeline = PostgresPipeline(rules: .init(rowLockGrace: .milliseconds(30)), now: Self.t0)
        let members = (0..<3).map { _ in Self.query(write: true) }
        for member in members { pipeline.sent(member, now: Self.at(0)) }
        #expect(pipeline.rescueCheck == Self.at(30))
        pipeline.resultArrived(members[0], now: Self.at(25))
        #expect(pipeline.rescueCheck == Self.at(55))
        #expect(pipeline.acceptsWork(now: Self.at(34)))  // answered 9 ms ago: not stalled
        pipeline.resultArrived(members[1], now: Self.at(50))
        #expect(!pipeline.check(now: Self.at(55)).cancel)
        pipeline.resultArrived(members[2], now: Self.at(60))
        #expect(pipeline.running == nil && pipeline.rescueCheck == nil)
        let check = pipeline.check(now: Self.at(500))
        #expect(!check.cancel && !check.giveUp && check.next == Self.at(3000))
        // The sync confirms the commit: all leave, in order.
        for member in members { #expect(pipeline.answered(now: Self.at(501)) === member) }
        #expect(pipeline.isEmpty && pipeline.resultsIn == 0)
    }

    /// Statements held for the end of the iteration count toward the depth.
    @Test func heldStatementsCountTowardTheDepth() {
        var pipeline = PostgresPipeline(rules: .init(maxDepth: 4), now: Self.t0)
        #expect(pipeline.acceptsWork(now: Self.at(0), held: 3))
        #expect(!pipeline.acceptsWork(now: Self.at(0), held: 4))
        pipeline.sent(Self.query(), now: Self.at(0))
        #expect(pipeline.acceptsWork(now: Self.at(0), held: 2))
        #expect(!pipeline.acceptsWork(now: Self.at(0), held: 3))
    }

    @Test func nothingIsQueuedBehindAnIsolatedRowWrite() {
        var pipeline = PostgresPipeline(rules: .init(), now: Self.t0)
        let update = Self.query(write: true)
        update.isolated = true
        pipeline.sent(update, now: Self.at(0))
        #expect(!pipeline.acceptsWork(now: Self.at(0)))
        #expect(pipeline.rescueCheck == nil)
        _ = pipeline.answered(now: Self.at(1))
        #expect(pipeline.acceptsWork(now: Self.at(1)))
        // An isolated write may follow young reads.
        pipeline.sent(Self.query(), now: Self.at(2))
        pipeline.sent(update, now: Self.at(3))
        #expect(!pipeline.acceptsWork(now: Self.at(3)))
    }

    @Test func insertsOfNewRowsArePipelinedLikeReads() {
        // An INSERT of a new row cannot wait on a row lock: pipelining writes keeps its throughput.
        var pipeline = PostgresPipeline(rules: .init(), now: Self.t0)
        pipeline.sent(Self.query(insert: true), now: Self.at(0))
        pipeline.sent(Self.query(insert: true), now: Self.at(1))
        #expect(pipeline.acceptsWork(now: Self.at(2)))
        #expect(!pipeline.acceptsWork(now: Self.at(10)))
    }

    @Test func depthIsBounded() {
        var pipeline = PostgresPipeline(rules: .init(maxDepth: 2), now: Self.t0)
        pipeline.sent(Self.query(), now: Self.at(0))
        pipeline.sent(Self.query(), now: Self.at(0))
        #expect(!pipeline.acceptsWork(now: Self.at(0)))
    }

    @Test func aDeadlineFailsTheQueryAndCancelsTheRunningStatement() {
        // The table-lock scenario: the head statement waits on the lock past its deadline.
        var pipeline = PostgresPipeline(rules: .init(), now: Self.t0)
        let box = Box()
        let head = Self.query(deadline: 3000, finished: box)
        let behind = Self.query(deadline: 3500)
        pipeline.sent(head, now: Self.at(0))
        pipeline.sent(behind, now: Self.at(1))
        var check = pipeline.check(now: Self.at(2999))
        #expect(check.expired.isEmpty && !check.cancel && !check.giveUp)
        #expect(check.next == Self.at(3000))

        check = pipeline.check(now: Self.at(3000))
        #expect(check.expired.count == 1 && check.expired[0] === head)
        #expect(check.cancel)
        #expect(!check.giveUp)
        #expect(pipeline.isDraining)
        #expect(!pipeline.acceptsWork(now: Self.at(3000)))
        // The caller finishes the expired query (what PostgresConnection does).
        head.finish(.failure(PostgresError(.timedOut, message: "deadline")))
        #expect(box.results.count == 1)

        // The cancel works: the head's late answer is dropped, and the query behind it is next.
        let answered = pipeline.answered(now: Self.at(3010))
        #expect(answered === head && answered.isFinished)
        answered.finish(.failure(PostgresError(.server, sqlState: "57014", message: "canceling statement due to user request")))
        #expect(box.results.count == 1)
        #expect(!pipeline.isDraining)
        check = pipeline.check(now: Self.at(3010))
        #expect(check.expired.isEmpty && !check.cancel)
        #expect(check.next == Self.at(3500))
        #expect(pipeline.acceptsWork(now: Self.at(3010)))  // answering again
    }

    @Test func abandonedStatementsBehindAreCancelledOnlyAfterAGrace() {
        var pipeline = PostgresPipeline(rules: .init(cancelGrace: .milliseconds(50)), now: Self.t0)
        let first = Self.query(deadline: 3000)
        let second = Self.query(deadline: 3001)
        pipeline.sent(first, now: Self.at(0))
        pipeline.sent(second, now: Self.at(0))
        var check = pipeline.check(now: Self.at(3001))
        #expect(check.expired.count == 2 && check.cancel)
        for query in check.expired { query.finish(.failure(PostgresError(.timedOut, message: "deadline"))) }
        _ = pipeline.answered(now: Self.at(3005))
        // The second, abandoned too, is now at the head: it may simply run; a cancel only if it
        // is still unanswered after the grace.
        check = pipeline.check(now: Self.at(3006))
        #expect(!check.cancel)
        #expect(check.next == Self.at(3055))
        check = pipeline.check(now: Self.at(3055))
        #expect(check.cancel)
    }

    @Test func aConnectionThatStopsAnsweringIsGivenUp() {
        // The frozen-path scenario: nothing comes back, not even the cancel's answer.
        var pipeline = PostgresPipeline(rules: .init(drainLimit: .seconds(3)), now: Self.t0)
        pipeline.sent(Self.query(deadline: 3000), now: Self.at(0))
        var check = pipeline.check(now: Self.at(3000))
        #expect(check.cancel && !check.giveUp)
        for query in check.expired { query.finish(.failure(PostgresError(.timedOut, message: "deadline"))) }
        // The drain limit counts from the abandonment (3 s), not from when the statement was sent.
        check = pipeline.check(now: Self.at(5999))
        #expect(!check.giveUp)
        #expect(check.next == Self.at(6000))
        check = pipeline.check(now: Self.at(6000))
        #expect(check.giveUp)
        #expect(pipeline.removeAll().count == 1)
    }

    @Test func aDeadlineCancelTheServerIgnoredIsSentAgainOnce() {
        // The row-lock scenario's next write: it waited for its row behind the previous one and
        // is sent just before its deadline. Its cancel follows at once and reaches the backend
        // while it still reads the write's messages, where PostgreSQL ignores a cancel. Without a
        // second one, the read behind it waited for its own deadline (seen once in a full run:
        // an unrelated POST answered 503 after 2 s).
        var pipeline = PostgresPipeline(rules: .init(cancelGrace: .milliseconds(50), maxCancels: 3, drainLimit: .seconds(2)), now: Self.t0)
        let write = Self.query(write: true, deadline: 5)
        let read = Self.query(deadline: 2000)
        pipeline.sent(write, now: Self.at(0))
        pipeline.sent(read, now: Self.at(1))
        var check = pipeline.check(now: Self.at(5))
        #expect(check.expired.count == 1 && check.cancel && !check.rescue)
        write.finish(.failure(PostgresError(.timedOut, message: "deadline")))
        // On its way (a slow connect): nothing more, looked at again after the grace.
        #expect(check.next == Self.at(55))
        check = pipeline.check(now: Self.at(55), delivery: .pending)
        #expect(!check.cancel && check.next == Self.at(105))
        // Delivered at 90: the grace counts from there, not from the send.
        check = pipeline.check(now: Self.at(105), delivery: .delivered(Self.at(90)))
        #expect(!check.cancel && check.next == Self.at(140))
        check = pipeline.check(now: Self.at(140), delivery: .delivered(Self.at(90)))
        #expect(check.cancel && !check.giveUp)
        // Once only: a head still unanswered after that is slow, not ignoring cancels.
        check = pipeline.check(now: Self.at(300), delivery: .delivered(Self.at(150)))
        #expect(!check.cancel && !check.giveUp)
        // A 57014 on the read while the repeat may still land (1 s after its delivery) is ours.
        #expect(pipeline.mayBeOurCancel(now: Self.at(1100), delivery: .delivered(Self.at(150))))
        #expect(!pipeline.mayBeOurCancel(now: Self.at(1200), delivery: .delivered(Self.at(150))))
        #expect(pipeline.mayBeOurCancel(now: Self.at(1200), delivery: .pending))
        // This one worked: the write's 57014 is dropped (its caller has its answer); the read runs.
        #expect(pipeline.answered(now: Self.at(310)) === write)
        #expect(!pipeline.isDraining && pipeline.acceptsWork(now: Self.at(311)))
    }

    @Test func aSlowHeadIsNotGivenUpForItsRepeatedCancel() {
        // A head that is merely slow (committing, CPU-starved) after a delivered cancel and its
        // one repeat: the connection waits for the drain limit, as for a single cancel, and the
        // repeat does not count against the drain's cancels.
        var pipeline = PostgresPipeline(rules: .init(cancelGrace: .milliseconds(50), maxCancels: 1, drainLimit: .seconds(3)), now: Self.t0)
        pipeline.sent(Self.query(deadline: 100), now: Self.at(0))
        var check = pipeline.check(now: Self.at(100))
        #expect(check.cancel)
        for query in check.expired { query.finish(.failure(PostgresError(.timedOut, message: "deadline"))) }
        #expect(pipeline.check(now: Self.at(150), delivery: .delivered(Self.at(100))).cancel)
        check = pipeline.check(now: Self.at(2000), delivery: .delivered(Self.at(150)))
        #expect(!check.cancel && !check.giveUp)
        #expect(pipeline.check(now: Self.at(3100), delivery: .delivered(Self.at(150))).giveUp)
    }

    @Test func aStatementSentAgainStartsWithNoCancels() {
        var pipeline = PostgresPipeline(rules: .init(), now: Self.t0)
        let write = Self.query(write: true)
        write.deadlineCancels = 2
        write.rescues = 3
        pipeline.sent(write, now: Self.at(0))
        #expect(!write.cancelRequested && write.deadlineCancels == 0 && write.rescues == 0)
    }

    @Test func tooManyCancelsGiveTheConnectionUp() {
        var pipeline = PostgresPipeline(rules: .init(cancelGrace: .milliseconds(1), maxCancels: 2, drainLimit: .seconds(60)), now: Self.t0)
        for i in 0..<3 { pipeline.sent(Self.query(deadline: 100 + Int64(i)), now: Self.at(0)) }
        var check = pipeline.check(now: Self.at(200))
        #expect(check.cancel)
        for query in check.expired { query.finish(.failure(PostgresError(.timedOut, message: "deadline"))) }
        _ = pipeline.answered(now: Self.at(201))
        check = pipeline.check(now: Self.at(203))
        #expect(check.cancel)
        _ = pipeline.answered(now: Self.at(204))
        check = pipeline.check(now: Self.at(206))
        #expect(check.giveUp)
    }

    @Test func aFailedPrepareIsResentOnce() {
        // The prepare-timeout scenario: the Prepare hit a lock timeout, the Execute queued behind
        // it in another batch answers 26000.
        let query = Self.query(write: true)
        let missing = PostgresError(.server, sqlState: "26000", message: "prepared statement \"s1\" does not exist")
        #expect(query.shouldResend(aborted: false, error: missing))
        query.resent = true
        #expect(!query.shouldResend(aborted: false, error: missing))
        #expect(!Self.query().shouldResend(aborted: false, error: PostgresError(.server, sqlState: "57014", message: "timeout")))
        #expect(Self.query().shouldResend(aborted: true, error: nil))
        // Still 26000 after the retry: answered 503, never 500.
        #expect(missing.isTransient)
    }
}
