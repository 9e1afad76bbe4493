import Net

/// One query from submit to answer: its statement, its caller's completion and its deadline.
///
/// The pool makes one per query; it waits in the pool's queue or a row's write queue, then rides
/// in its connection's pipeline until PostgreSQL answers. Whoever gives up first finishes it: the
/// answer, or the deadline (503 to the client at once, the late answer dropped). `finish` runs the
/// completion exactly once. Loop-owned.
final class PendingQuery {
    var query: PostgresQuery
    let submitted: MonotonicTime
    /// When the caller stops waiting (`DB_REQUEST_TIMEOUT` after the request began).
    let deadline: MonotonicTime
    /// A write of an existing row (it names the row: `PostgresQuery.rowKey`) can wait on that
    /// row's lock for as long as another transaction holds it. Reads never wait on row locks, nor
    /// does an INSERT of a new row (only a table lock or a stalled path stops them, and those stop
    /// everything). The isolation rule queues nothing behind such a write.
    var mayWaitOnRowLock: Bool { !query.readOnly && query.rowKey != nil }
    /// It may join a commit group (`PostgresQuery.sharesCommit`), not being sent again (a write
    /// sent again goes alone). With a row key, its group is the iteration's row writes, sent in
    /// lock order when the iteration ends; without, the inserts sent as they come.
    var joinsCommitGroup: Bool { query.sharesCommit && !query.readOnly && !resent && !leftGroup }
    /// The commit groups a write may join: plain inserts, or writes of named rows.
    enum CommitGroup { case inserts, rowWrites }
    /// Which group it may join, if any.
    var commitGroup: CommitGroup? { joinsCommitGroup ? (query.rowKey == nil ? .inserts : .rowWrites) : nil }
    /// Its last send was into a commit group: a deadlock there (40P01) may be the group's doing
    /// (its other rows' locks), so it is sent again alone.
    var grouped = false
    /// Sent again alone because its commit group did not commit (a neighbour failed, or the
    /// commit did): not its own fault, so not its one resend (`resent`).
    var leftGroup = false
    /// A row write sent again after it was cancelled for blocking the statements behind it: it
    /// goes alone this time (nothing is queued behind it on its connection).
    var isolated = false
    /// Sent once more after SQLSTATE 26000 (its statement's Prepare failed) or a batch abort:
    /// never a second time, so a statement that cannot run ends instead of looping.
    var resent = false
    /// When it was handed to libpq (set by its connection's pipeline).
    var sentAt = MonotonicTime(nanoseconds: 0)
    /// The columns its last send relied on (no Describe went with it): its result points into
    /// them (`RowShape`). Set by every send, for the connection it goes to.
    var rowShape: RowShape?
    /// Cancel requests sent for it after its deadline: the first, then one more if the server
    /// ignored it (`PostgresPipeline.check`).
    var deadlineCancels = 0
    var cancelRequested: Bool { deadlineCancels > 0 }
    /// Rescue cancels sent for it (a row write blocking statements behind it).
    var rescues = 0
    /// When the last cancel request (rescue or deadline) was sent for it.
    var lastCancel = MonotonicTime(nanoseconds: 0)
    /// It is the write of its row in flight on this loop (`RowWriteQueues`): when it ends, the
    /// next write of the row starts.
    var holdsRowKey = false
    /// Set while it waits for a connection (pool queue or row queue): its deadline timer.
    var waitTimer: LoopTimer?
    private(set) var isFinished = false
    /// The caller's.
    let completion: (Result<PostgresResult, PostgresError>) -> Void
    /// The pool that made it: it records the outcome (timings, the failure log, the row's next
    /// write) before the caller's completion runs. Nil in unit tests. The pool outlives its
    /// queries (it finishes them all at shutdown), hence no reference count.
    unowned(unsafe) let pool: PostgresPool?

    init(_ query: consuming PostgresQuery, submitted: MonotonicTime, deadline: MonotonicTime, pool: PostgresPool? = nil,
         completion: @escaping (Result<PostgresResult, PostgresError>) -> Void) {
        self.query = query
        self.submitted = submitted
        self.deadline = deadline
        self.pool = pool
        self.completion = completion
    }

    /// Whether to send it once more, alone, after its answer came back as `error`: it was skipped
    /// because a neighbour in its batch failed (`aborted`), its statement's Prepare failed
    /// (SQLSTATE 26000 invalid_sql_statement_name, e.g. a Prepare that hit a lock timeout with
    /// executes queued behind it), its prepared statement went stale (0A000: a migration
    /// changed a column's type; it is prepared again), or it was chosen as a deadlock's victim
    /// in a commit group (40P01: alone it holds one row's lock and cannot close a cycle with its
    /// group's). None committed, so this is safe for a write too; once only, and not for a query
    /// whose caller already gave up.
    func shouldResend(aborted: Bool, error: PostgresError?) -> Bool {
        (aborted || error?.sqlState == "26000" || error?.isStalePreparedStatement == true || grouped && error?.sqlState == "40P01")
            && !resent && !isFinished
    }

    /// Whether a 57014 answer came from our own rescue cancel (`PostgresPipeline.check`): the
    /// statement was interrupted and did not commit (each write is its own implicit transaction),
    /// so it is sent again, once. `ourCancelMayHaveLanded`: the connection sent such a cancel
    /// lately, and a cancel interrupts whatever runs when it arrives.
    func wasInterruptedByUs(_ error: PostgresError?, ourCancelMayHaveLanded: Bool) -> Bool {
        error?.sqlState == "57014" && ourCancelMayHaveLanded && !resent && !isFinished
    }

    /// Delivers `result` unless the query already ended (a late answer after its deadline).
    func finish(_ result: Result<PostgresResult, PostgresError>) {
        guard !isFinished else { return }
        isFinished = true
        if let pool { pool.finished(self, result) } else { completion(result) }
    }
}
