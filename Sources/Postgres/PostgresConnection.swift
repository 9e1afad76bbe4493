import CLibPQ
import Glibc
import Net

/// What a connection tells its pool. Called on the connection's loop.
protocol PostgresConnectionDelegate: AnyObject {
    func connectionReady(_ connection: PostgresConnection)
    func connectionFailed(_ connection: PostgresConnection, error: PostgresError)
    func connectionClosed(_ connection: PostgresConnection, error: PostgresError?)
    func connectionHasCapacity(_ connection: PostgresConnection)
    func connectionSawReadOnly(_ connection: PostgresConnection, error: PostgresError)
    /// A cancel request was sent, or the connection was given up (`PostgresPipeline.Check`).
    func connection(_ connection: PostgresConnection, reports event: PostgresFaultLog.Event, message: String)
    /// A query our own cancel interrupted: the pool sends it again (elsewhere if it can).
    func connection(_ connection: PostgresConnection, resubmits query: PendingQuery)
}

/// One libpq connection driven by an event loop without ever blocking it.
///
/// Connect: host names resolved off the loop (`HostResolver`), then `PQconnectStartParams` and
/// `PQconnectPoll` on readiness of the socket registered in the loop's epoll, bounded by our own
/// connect timer. Then non-blocking and in pipeline mode: every query is `PQsendQueryPrepared`
/// (after a one-time `PQsendPrepare` of its SQL on this connection), and from its statement's
/// second execution on `PQsendQueryPreparedShaped`, without Describe (`RowShape`). A write is followed at once
/// by a sync of its own, so it is its own implicit transaction and one failing does not abort
/// another. Reads sent during one loop iteration share one sync, queued when the iteration ends.
/// They form one implicit read-only transaction; if one fails (a statement timeout), PostgreSQL
/// aborts the rest of the batch, and those are sent again, each with its own sync.
///
/// **Commit groups.** Inserts that allow it (`PostgresQuery.sharesCommit`: a new row, no row lock
/// to wait on) sent in one iteration share a sync too, up to `maxCommitGroup`: one implicit
/// transaction, one commit, one WAL flush for all of them. Why: a write's throughput is bound by
/// its commit (the backend waits for the WAL flush before it takes the next statement), not by
/// CPU: under `POST /todos` load a third of both cores sat idle. pgbench, 8 clients, the service's
/// insert: 10.7k inserts/s one per transaction, 16.4k two per pipelined transaction, 24.7k four.
/// Every member is still answered only at the sync, after the commit. If one fails, PostgreSQL
/// skips the rest (aborted, sent again as above) and rolls back the ones before it: those are sent
/// again at once, each alone; if the commit itself fails, every member is sent again alone, so each
/// meets its own fate and one bad row never fails another. The first execution of a statement
/// (its Prepare) goes alone. Row writes that allow it (an UPDATE or DELETE naming its row) form
/// their own groups: held until the iteration ends, then sent sorted in lock order, so that two
/// groups anywhere never wait on each other in a cycle; a locked row in a group is cancelled by the
/// pipeline's rescue and the others are sent again alone (`PostgresPipeline`). Nothing is
/// sent before the iteration ends: syncs are queued without a flush (`PQsendPipelineSync`,
/// scripts/libpq-patches/sync-without-flush.patch; libpq 15's `PQpipelineSync` flushes at every
/// sync), and each connection flushes once then, so the writes and reads of one iteration go out
/// in one `send` and wake the backend once.
/// Results are binary format.
///
/// Deadlines and the isolation rule are `PostgresPipeline`'s decisions; this class carries them out
/// (fails expired queries, sends cancel requests through `PostgresCanceller`, gives up a connection
/// that stopped answering). A statement is recorded as prepared on this connection only once
/// PostgreSQL confirmed its Prepare; one that fails with 26000 (its Prepare failed, e.g. on a lock
/// timeout) or was skipped with a failed batch is sent once more, alone, with a new Prepare.
///
/// Loop-owned; results are matched to queries by order (`expected`).
final class PostgresConnection: Selectable {
    enum State { case resolving, connecting, ready, closed }

    private enum Expected {
        /// `statement`: the number in its name (`s1`): the answer is this Prepare's, even if the
        /// SQL was prepared again under another name meanwhile.
        case prepare(StatementKey, statement: Int)
        /// `batched`: it shares a sync with other reads (one implicit transaction).
        /// `describedStatement`: the number of the statement it executed when sent with Describe
        /// (its shape is learned from the result), 0 otherwise: then the query holds the shape it
        /// was sent with (`PendingQuery.rowShape`, nil for no rows).
        case query(PendingQuery, batched: Bool, describedStatement: Int)
        case sync
    }

    /// A statement's name on this connection; `confirmed` once PostgreSQL answered its Prepare.
    /// Executes may be pipelined behind an unconfirmed Prepare: if it fails they get 26000 and are
    /// sent again.
    private struct Prepared {
        let name: String
        /// The number in `name`.
        let number: Int
        var confirmed: Bool
        /// Learned from its first result; then it is executed without Describe.
        var shape = StatementShape.unknown
    }

    let id: Int
    let loop: EventLoop
    unowned let delegate: PostgresConnectionDelegate
    private(set) var state = State.resolving
    private var pg: OpaquePointer?
    private var fd: Int32 = -1
    private var generation: UInt32 = 0
    private var interest: Interest = []
    private var expected = FIFO<Expected>()
    /// The queries in flight, with their deadlines and the isolation rule.
    private var pipeline: PostgresPipeline
    /// SQL → statement, for statements prepared (or being prepared) on this connection.
    private var prepared: [StatementKey: Prepared] = [:]
    private var statementCounter = 0
    private var headResult: PostgresResult?
    private var headError: PostgresError?
    /// The head query was skipped because an earlier statement of its batch failed.
    private var headAborted = false
    private var prepareError: PostgresError?
    /// Writes whose results came, in order (one with a sync of its own, or the members of a
    /// commit group so far): answered when the sync confirms the commit. The sync's error, if the
    /// commit failed. `committing`: the same storage while a sync answers them (no allocation per
    /// write; answering may send more queries on this connection).
    private var awaitingCommit: [(PendingQuery, PostgresResult)] = []
    private var committing: [(PendingQuery, PostgresResult)] = []
    /// Queries out of the pipeline, to be sent again through the pool when `readResults` ends
    /// (`resubmit`); `resubmitting`: the same storage while they are handed over.
    private var resubmissions: [PendingQuery] = []
    private var resubmitting: [PendingQuery] = []
    private var syncError: PostgresError?
    /// Statements sent since the last sync that share the next one: reads, or a commit group.
    private enum Batch { case reads, commitGroup, rowGroup }
    private var unsynced = 0
    private var unsyncedBatch = Batch.reads
    /// Whether the end-of-iteration sync and flush is scheduled.
    private var flushScheduled = false
    /// Members of a commit group at most. 16: a loaded iteration here reads ~7 `POST`s; a bound
    /// keeps a group's rows (~200 bytes each) in PostgreSQL's 8 KiB output buffer and a failed
    /// group's resends few.
    static let maxCommitGroup = 16
    /// The size of the commit group open on this connection in this iteration (0: none): the pool
    /// adds inserts to it while it is below `maxCommitGroup` (`PostgresPool.leastBusy`).
    var openCommitGroup: Int { unsyncedBatch == .commitGroup ? unsynced : 0 }
    /// Row writes that may share their commit, held in this iteration to be sent as one group in
    /// lock order when it ends (`sendHeldRowWrites`); `sendingRowWrites`: the same storage while
    /// they are sent. The pool adds row writes here while it is below `maxCommitGroup`.
    private var heldRowWrites: [PendingQuery] = []
    private var sendingRowWrites: [PendingQuery] = []
    var openRowGroup: Int { heldRowWrites.count }

    /// Sent and unanswered, or held to be sent at the end of this iteration.
    var queriesInFlight: Int { pipeline.count + heldRowWrites.count }
    var expiresAt: MonotonicTime
    private(set) var lastActive: MonotonicTime
    /// No new queries; closes once its in-flight queries are done.
    var retiring = false
    private lazy var connectTimer = LoopTimer { [unowned self] in
        self.failConnect(PostgresError(.unavailable, message: "connection attempt timed out"))
    }
    /// Armed at the pipeline's next check: the earliest deadline in flight, a cancel, giving up.
    private lazy var pipelineTimer = LoopTimer { [unowned self] in self.checkPipeline() }

    /// The endpoint's cancel requests.
    let canceller: PostgresCanceller
    /// The last cancel request sent from this connection: once it reached the server, a head
    /// still unanswered was not interrupted and may get another (`PostgresPipeline.check`).
    private var lastCancel: PostgresCanceller.Ticket?

    init(id: Int, loop: EventLoop, delegate: PostgresConnectionDelegate, lifetime: TimeSpan,
         rules: PostgresPipeline.Rules = .init(), canceller: PostgresCanceller) {
        self.id = id
        self.canceller = canceller
        self.loop = loop
        self.delegate = delegate
        expiresAt = loop.now + lifetime
        lastActive = loop.now
        pipeline = PostgresPipeline(rules: rules, now: loop.now)
    }

    /// The handle is normally released by `close` or a failure; this covers a connection dropped
    /// without either (the socket and the server's process would otherwise leak).
    deinit {
        if let pg { PQfinish(pg) }
    }

    /// Takes a new query now (ready, not retiring, and the isolation rule allows it).
    func acceptsWork(now: MonotonicTime) -> Bool {
        state == .ready && !retiring && pipeline.acceptsWork(now: now, held: heldRowWrites.count)
    }

    // MARK: Connecting

    func connect(_ settings: PostgresConnectionSettings) {
        let hosts = (settings["host"] ?? ProcessEnvironment.value("PGHOST") ?? "").split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard settings["hostaddr"] == nil, hosts.contains(where: HostResolver.needsLookup) else {
            startConnecting(settings)
            return
        }
        let me = LoopBound(self, loop: self.loop)
        let loop = self.loop
        HostResolver.queue.async {
            var addresses: [String] = []
            var failure: PostgresError?
            for host in hosts {
                if !HostResolver.needsLookup(host) { addresses.append(host); continue }
                switch HostResolver.lookup(host) {
                case .success(let address): addresses.append(address)
                case .failure(let error): failure = error
                }
                if failure != nil { break }
            }
            let resolved = addresses.joined(separator: ",")
            let lookupFailure = failure
            loop.execute {
                let connection = me.value
                guard connection.state == .resolving else { return }
                if let lookupFailure { connection.failConnect(lookupFailure); return }
                var settings = settings
                settings["hostaddr"] = resolved
                connection.startConnecting(settings)
            }
        }
        loop.schedule(connectTimer, at: loop.now + .milliseconds(settings.connectTimeout))
    }

    private func startConnecting(_ settings: PostgresConnectionSettings) {
        state = .connecting
        defer { if let pg { Self.silenceNotices(pg) } }
        let keywords = settings.parameters.map(\.keyword) + [nil]
        let values = settings.parameters.map { Optional($0.value) } + [nil]
        pg = withCStrings(keywords) { k in withCStrings(values) { v in PQconnectStartParams(k.baseAddress, v.baseAddress, 0) } }
        // Verbose messages carry the server's SQLSTATE ("FATAL:  28P01: password authentication
        // failed ..."): a refused or dropped connection is then logged with it (`failure`).
        if let pg { PQsetErrorVerbosity(pg, PQERRORS_VERBOSE) }
        guard let pg, PQstatus(pg) != CONNECTION_BAD else {
            failConnect(PostgresError(.unavailable, message: pg.map(Self.errorMessage) ?? "out of memory"))
            return
        }
        if !connectTimer.isScheduled {
            loop.schedule(connectTimer, at: loop.now + .milliseconds(settings.connectTimeout))
        }
        // libpq's documented start: wait until the socket is writable, then poll.
        watchSocket(.write)
    }

    private func continueConnecting() {
        guard let pg else { return }
        let status = PQconnectPoll(pg)
        switch status {
        case PGRES_POLLING_READING: watchSocket(.read)
        case PGRES_POLLING_WRITING: watchSocket(.write)
        case PGRES_POLLING_OK: established()
        default: failConnect(Self.failure(.unavailable, pg))
        }
    }

    /// (Re-)registers libpq's current socket: during a connect it may change (another host in
    /// the list, an SSL retry), and a closed fd's number may come back for the new socket, so the
    /// registration is always replaced, never assumed.
    private func watchSocket(_ wanted: Interest) {
        guard let pg else { return }
        let current = PQsocket(pg)
        if fd >= 0 { loop.deregister(fd: fd) }
        fd = current
        interest = wanted
        guard fd >= 0 else {
            failConnect(Self.failure(.unavailable, pg))
            return
        }
        do {
            generation = try loop.register(fd: fd, interest: wanted, handler: self)
        } catch {
            failConnect(PostgresError(.unavailable, message: "cannot watch the database socket: \(error)"))
        }
    }

    private func established() {
        guard let pg else { return }
        loop.cancel(connectTimer)
        guard PQsetnonblocking(pg, 1) == 0, PQenterPipelineMode(pg) == 1 else {
            failConnect(Self.failure(.unavailable, pg))
            return
        }
        state = .ready
        lastActive = loop.now
        setInterest(.read)
        delegate.connectionReady(self)
    }

    private func failConnect(_ error: PostgresError) {
        guard state == .resolving || state == .connecting else { return }
        _ = release()
        delegate.connectionFailed(self, error: error)
    }

    // MARK: Queries

    /// Sends `pending`; it is finished on this loop with its result. Only on a ready connection.
    /// A read shares its iteration's sync with the other reads, unless it is sent again after its
    /// batch failed: then it goes alone, so that a neighbour cannot abort it twice.
    /// A row write that may share its commit is held until the iteration ends (`heldRowWrites`),
    /// then sent with the others in lock order.
    func send(_ pending: PendingQuery) {
        guard state == .ready, pg != nil else {
            pending.finish(.failure(PostgresError(.connectionLost, message: "connection is not open")))
            return
        }
        if pending.commitGroup == .rowWrites {
            heldRowWrites.append(pending)
            scheduleEndOfIteration()
            if heldRowWrites.count >= Self.maxCommitGroup { sendHeldRowWrites() }
            return
        }
        // Nothing may be queued behind an isolated row write (`PostgresPipeline`): the held ones
        // go first (the drill's unrelated writes waited out its deadline behind it).
        if pending.isolated { sendHeldRowWrites() }
        transmit(pending)
    }

    /// Hands `pending` to libpq (sent at the iteration's flush), with a sync of its own or into
    /// the open batch.
    private func transmit(_ pending: PendingQuery) {
        guard state == .ready, let pg else {
            pending.finish(.failure(PostgresError(.connectionLost, message: "connection is not open")))
            return
        }
        let query = pending.query
        let known = prepared[query.key]
        // A write joins a commit group only with a statement PostgreSQL has prepared: a Prepare
        // inside the group could fail it for everyone.
        let batch: Batch? = query.readOnly && !pending.resent ? .reads
            : known?.confirmed == true ? pending.commitGroup.map { $0 == .inserts ? .commitGroup : .rowGroup } : nil
        pending.grouped = batch == .commitGroup || batch == .rowGroup
        // A write must not join the reads' implicit transaction, nor may its Prepare, nor a read
        // or a lone write a commit group: close the open batch first (a failure in it would
        // otherwise skip the Prepare too).
        if unsynced > 0 && batch != unsyncedBatch {
            syncBatch()
            guard state == .ready else {
                pending.finish(.failure(PostgresError(.connectionLost, message: "connection is not open")))
                return
            }
        }
        let name: String
        let statement: Int
        var described = true
        pending.rowShape = nil
        // A query sent again after 26000 relies only on a confirmed statement: behind another
        // unconfirmed Prepare it could meet the same lock and fail the same way.
        if let known, known.confirmed || !pending.resent {
            name = known.name
            statement = known.number
            switch known.shape {
            case .unknown: break
            case .rows(let rowShape): pending.rowShape = rowShape; described = false
            case .noRows: described = false
            }
        } else {
            statementCounter += 1
            statement = statementCounter
            name = "s\(statement)"
            let sent = name.withCString { PQsendPrepare(pg, $0, query.sql, Int32(query.binds.count), nil) }
            guard sent == 1 else {
                let error = Self.failure(.connectionLost, pg)
                pending.finish(.failure(error))
                broken(error)
                return
            }
            expected.append(.prepare(query.key, statement: statement))
            prepared[query.key] = Prepared(name: name, number: statement, confirmed: false)
        }
        // withCString, not the implicit String-to-pointer conversion: for a short (inline) string
        // such as "s1" that conversion allocates a copy, once per query.
        let sent = name.withCString { statement in
            query.binds.withCStrings { values in
                Self.sendExecute(pg, statement, values, described: described, shape: pending.rowShape) && (batch != nil || todo_send_pipeline_sync(pg) == 1)
            }
        }
        guard sent else {
            let error = Self.failure(.connectionLost, pg)
            pending.finish(.failure(error))
            broken(error)
            return
        }
        // Only a read is answered at its own result; a write (a commit group's too) at the sync.
        expected.append(.query(pending, batched: batch == .reads, describedStatement: described ? statement : 0))
        let now = loop.now
        pipeline.sent(pending, now: now)
        if !pipelineTimer.isScheduled || pending.deadline < pipelineTimer.deadline {
            loop.schedule(pipelineTimer, at: pending.deadline)
        }
        if let rescueAt = pipeline.rescueCheck, rescueAt < pipelineTimer.deadline {
            loop.schedule(pipelineTimer, at: rescueAt)
        }
        lastActive = now
        if let batch {
            unsynced += 1
            unsyncedBatch = batch
            if batch != .reads && unsynced >= Self.maxCommitGroup { syncBatch() }
        } else {
            expected.append(.sync)
        }
        scheduleEndOfIteration()
    }

    private func scheduleEndOfIteration() {
        guard !flushScheduled else { return }
        flushScheduled = true
        // Strong, not weak: one weak reference gives an object a side table, and from then
        // on every retain and release of the connection takes the slow path
        // (`incrementSlow`: 1 % of a `GET /todos/{id}`, perf). The closure is dropped once
        // it ran, and `endIteration` does nothing for a connection that closed meanwhile.
        loop.atIterationEnd { self.endIteration() }
    }

    /// Sends the held row writes as one commit group, in lock order (`RowKey.precedesInLockOrder`):
    /// every group of every process takes its rows' locks in the same order, so two groups
    /// never wait on each other in a cycle (a deadlock PostgreSQL would find only after
    /// `deadlock_timeout`, 1 s). A statement not yet confirmed as prepared here goes alone.
    private func sendHeldRowWrites() {
        guard !heldRowWrites.isEmpty else { return }
        swap(&sendingRowWrites, &heldRowWrites)
        RowKey.sortInLockOrder(&sendingRowWrites)
        for pending in sendingRowWrites where !pending.isFinished {
            // Broken by an earlier send: the rest were never sent, so they go elsewhere.
            if state == .ready { transmit(pending) } else { delegate.connection(self, resubmits: pending) }
        }
        sendingRowWrites.removeAll(keepingCapacity: true)
        syncBatch()
    }

    /// Bind and Execute of a prepared statement (binary results), with Describe until its shape is
    /// known (`RowShape`).
    private static func sendExecute(_ pg: OpaquePointer, _ statement: UnsafePointer<CChar>,
                                    _ values: UnsafeBufferPointer<UnsafePointer<CChar>?>, described: Bool, shape: RowShape?) -> Bool {
        if described {
            return PQsendQueryPrepared(pg, statement, Int32(values.count), values.baseAddress, nil, nil, 1) == 1
        }
        return todo_send_query_prepared_shaped(pg, statement, Int32(values.count), values.baseAddress, 1, shape?.handle) == 1
    }

    /// The first result of a statement executed with Describe: from now on it goes without. Only
    /// for the statement it executed: the SQL may have been prepared again under another name.
    private func learnShape(of key: StatementKey, statement: Int, from result: OpaquePointer) {
        guard RowShape.libpqSendsShaped, let known = prepared[key], known.number == statement,
              case .unknown = known.shape else { return }
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK:
            if let rowShape = RowShape(copying: result) { prepared[key]?.shape = .rows(rowShape) }
        case PGRES_COMMAND_OK where PQnfields(result) == 0:
            prepared[key]?.shape = .noRows
        default:
            break
        }
    }

    /// Carries out the pipeline's check: timeouts to callers, a cancel request, or giving up.
    private func checkPipeline() {
        guard state == .ready, let pg else { return }
        let check = pipeline.check(now: loop.now, delivery: lastCancel?.delivery ?? .none)
        for query in check.expired {
            query.finish(.failure(PostgresError(.timedOut, message: "no answer from the database before the request deadline")))
        }
        // Their completions may have sent queries that broke this connection (and freed `pg`).
        guard state == .ready, let pg = self.pg else { return }
        if check.giveUp {
            giveUp("no answer for \(pipeline.rules.drainLimit) with \(pipeline.count) statement(s) in flight")
            return
        }
        if check.rescue {
            // Best effort: without a free cancel slot the statements behind wait for its deadline.
            // Without a free slot: none on its way (`lastCancel` nil), so the pipeline tries again
            // after a grace, within `maxRescues`.
            lastCancel = canceller.cancel(pg)
            if lastCancel != nil {
                delegate.connection(self, reports: .rowWriteIsolated,
                                    message: "a row write blocked \(pipeline.count - 1) statement(s) behind it for \(pipeline.rules.rowLockGrace); sent again alone")
            }
        } else if check.cancel {
            lastCancel = canceller.cancel(pg)
            if lastCancel != nil {
                delegate.connection(self, reports: .cancelSent, message: "statement running past its deadline")
            } else {
                giveUp("no cancel request could be sent (all in flight)")
                return
            }
        }
        if let next = check.next { loop.schedule(pipelineTimer, at: next) }
    }

    /// Closes a connection that stopped answering; its in-flight queries fail as connection lost.
    private func giveUp(_ reason: String) {
        delegate.connection(self, reports: .connectionGivenUp, message: reason)
        broken(PostgresError(.connectionLost, message: "the connection stopped answering; closed"), logged: true)
    }

    /// The loop iteration that sent queries ends: the reads' sync, then one flush for all.
    /// A write's sync went with it; with the patched libpq nothing has been sent yet: the flush
    /// sends every query of the iteration in one `send` (perf trace of `POST /todos` under 64
    /// clients: 1.0 `sendto` a request to PostgreSQL before, one per write).
    private func endIteration() {
        // Cleared when done: what is sent meanwhile goes out with this flush, not another pass.
        defer { flushScheduled = false }
        guard state == .ready else { return }
        if heldRowWrites.isEmpty || pipeline.acceptsWork(now: loop.now) {
            sendHeldRowWrites()
        } else {
            // Since they were held, this iteration's timers found the pipeline draining or
            // stalled, or an isolated write went out: the isolation rule queues nothing behind
            // that. Back to the pool, which picks a connection that takes work (or queues them).
            handBackHeldRowWrites()
        }
        syncBatch()
        if state == .ready { flush() }
    }

    /// The held row writes (never sent) go back to the pool, to be sent elsewhere or later.
    private func handBackHeldRowWrites() {
        swap(&sendingRowWrites, &heldRowWrites)
        for pending in sendingRowWrites where !pending.isFinished { delegate.connection(self, resubmits: pending) }
        sendingRowWrites.removeAll(keepingCapacity: true)
    }

    /// Ends the open batch of reads or commit group with one sync (queued: `endIteration` flushes).
    private func syncBatch() {
        guard unsynced > 0, state == .ready, let pg else { return }
        unsynced = 0
        guard todo_send_pipeline_sync(pg) == 1 else {
            broken(Self.failure(.connectionLost, pg))
            return
        }
        expected.append(.sync)
    }

    private func flush() {
        guard let pg else { return }
        switch PQflush(pg) {
        case 0: setInterest(.read)
        case 1: setInterest([.read, .write])  // the socket is full: finish when writable
        default: broken(Self.failure(.connectionLost, pg))
        }
    }

    func handleEvents(_ events: UInt32) {
        switch state {
        case .connecting:
            continueConnecting()
        case .ready:
            guard let pg else { return }
            if events & EventBits.writable != 0 {
                flush()
                if state != .ready { return }
            }
            if events & (EventBits.readable | EventBits.hangup | EventBits.error) != 0 {
                guard PQconsumeInput(pg) == 1 else {
                    broken(Self.failure(.connectionLost, pg))
                    return
                }
                readResults()
            }
            if state == .ready && PQstatus(pg) == CONNECTION_BAD {
                broken(Self.failure(.connectionLost, pg))
            }
        case .resolving, .closed:
            break
        }
    }

    /// Takes every complete result libpq has and completes queries in order.
    private func readResults() {
        guard let pg else { return }
        // Queries to send again leave the pipeline here, in order, and go to the pool once every
        // result at hand is taken: a completion or a send run meanwhile could close this
        // connection under the loop below.
        defer { if !resubmissions.isEmpty { resubmit() } }
        var answered = false
        // A write's result came (its sync still to come): progress, and the next statement may be
        // a row write whose rescue is due earlier than the armed timer.
        var progressed = false
        while state == .ready, let head = expected.first {
            if PQisBusy(pg) != 0 { break }
            let result = PQgetResult(pg)
            switch head {
            case .prepare(let key, let statement):
                guard let result else {
                    expected.removeFirst()
                    continue
                }
                // Only for this Prepare's statement: a resent query may have prepared the SQL
                // again under another name meanwhile.
                let current = prepared[key]?.number == statement
                switch PQresultStatus(result) {
                case PGRES_COMMAND_OK:
                    if current { prepared[key]?.confirmed = true }
                case PGRES_FATAL_ERROR:
                    prepareError = Self.serverError(result)
                    if current { prepared[key] = nil }  // prepare again next time
                case PGRES_PIPELINE_ABORTED:
                    // Skipped with the rest of a batch a neighbour failed: the statement does not
                    // exist; the next use (the aborted query's retry included) prepares it again.
                    if current { prepared[key] = nil }
                default:
                    break
                }
                PQclear(result)
            case .query(let pending, let batched, let describedStatement):
                guard let result else {
                    expected.removeFirst()
                    // Skipped because a neighbour in its batch failed, or its statement's Prepare
                    // failed (26000 invalid_sql_statement_name): run it again, alone, once. Neither
                    // ran, so this is safe for a write too.
                    let retry = pending.shouldResend(aborted: headAborted, error: headError)
                    // Skipped because of its commit group, or its deadlock victim: not its own
                    // fault (it goes alone next time, where neither can happen again).
                    let groupsFault = pending.grouped && (headAborted || headError?.sqlState == "40P01")
                    let outcome: Result<PostgresResult, PostgresError>
                    if let error = headError {
                        outcome = .failure(error)
                    } else if let value = headResult {
                        outcome = .success(value)
                    } else {
                        outcome = .failure(PostgresError(.server, message: "no result"))
                    }
                    let interrupted = pending.wasInterruptedByUs(headError, ourCancelMayHaveLanded: pipeline.mayBeOurCancel(now: loop.now, delivery: lastCancel?.delivery ?? .none))
                    headAborted = false
                    headResult = nil
                    headError = nil
                    // A write is committed when the server processes its sync, after this result:
                    // an error can still come there (a deferred constraint, a serialization
                    // failure, the backend dying). So success is delivered only at the sync
                    // (`awaitingCommit`), never before the commit.
                    if !batched, case .success(let value) = outcome {
                        awaitingCommit.append((pending, value))
                        pipeline.resultArrived(pending, now: loop.now)
                        progressed = true
                        continue
                    }
                    // This one failed, so its implicit transaction rolls back at the sync: the
                    // commit group's members before it will not commit. Sent again, each alone
                    // (they come before it in the pipeline).
                    if !awaitingCommit.isEmpty { resendAwaitingCommit() }
                    let answeredQuery = pipeline.answered(now: loop.now)
                    assert(answeredQuery === pending, "results arrive in the order the queries were sent")
                    answered = true
                    if retry || interrupted {
                        // Sent again through the pool (which keeps the isolation rule): after
                        // 26000 or a batch abort it did not run; interrupted by our own rescue
                        // cancel (a row write waiting on a lock, or what ran when the cancel
                        // arrived) it did not commit. A row write goes isolated after a rescue.
                        // Not counted as its one resend when its group was at fault: a second
                        // rescue (another lock) may then still send it again.
                        if groupsFault && !interrupted { pending.leftGroup = true } else { pending.resent = true }
                        if interrupted { pending.isolated = pending.mayWaitOnRowLock }
                        resubmissions.append(pending)
                        continue
                    }
                    if case .failure(let error) = outcome, error.isReadOnlyTransaction {
                        delegate.connectionSawReadOnly(self, error: error)
                    }
                    pending.finish(outcome)
                    continue
                }
                switch PQresultStatus(result) {
                case PGRES_TUPLES_OK, PGRES_COMMAND_OK:
                    if describedStatement != 0 { learnShape(of: pending.query.key, statement: describedStatement, from: result) }
                    if headResult == nil { headResult = PostgresResult(result, shape: pending.rowShape) } else { PQclear(result) }
                case PGRES_FATAL_ERROR:
                    let error = Self.serverError(result)
                    headError = error
                    // Stale after a migration: prepared again (new name, new shape) at the resend.
                    if error.isStalePreparedStatement { prepared[pending.query.key] = nil }
                    PQclear(result)
                case PGRES_PIPELINE_ABORTED:
                    headError = prepareError ?? PostgresError(.server, message: "statement aborted in the pipeline")
                    headAborted = prepareError == nil
                    PQclear(result)
                default:
                    PQclear(result)
                }
            case .sync:
                guard let result else {
                    // The end of an error raised at the sync (the commit failed); the sync's own
                    // result follows.
                    if syncError != nil { continue }
                    broken(PostgresError(.connectionLost, message: "unexpected end of results"))
                    return
                }
                switch PQresultStatus(result) {
                case PGRES_PIPELINE_SYNC:
                    expected.removeFirst()
                    prepareError = nil
                    let error = syncError
                    syncError = nil
                    if !awaitingCommit.isEmpty {
                        answered = true
                        if let error, error.isReadOnlyTransaction { delegate.connectionSawReadOnly(self, error: error) }
                        if error != nil && awaitingCommit.count > 1 {
                            // A group's commit failed: none of it happened. Each goes again alone,
                            // so that one member's fault (a deferred constraint) fails only it.
                            resendAwaitingCommit()
                        } else {
                            answerCommitted(error)
                        }
                    }
                case PGRES_FATAL_ERROR:
                    syncError = Self.serverError(result)
                default:
                    break
                }
                PQclear(result)
            }
        }
        if (answered || progressed) && state == .ready {
            lastActive = loop.now
            if pipeline.isEmpty {
                loop.cancel(pipelineTimer)
            } else if let rescueAt = pipeline.rescueCheck, rescueAt < pipelineTimer.deadline {
                loop.schedule(pipelineTimer, at: rescueAt)  // a row write is the new head
            }
            delegate.connectionHasCapacity(self)
        }
    }

    /// Answers the writes awaiting this sync: committed, or the commit failed (then it did not
    /// happen). All leave the pipeline first, in order; then they are finished: a completion may
    /// send more queries here, or close the connection (which must not fail them again).
    private func answerCommitted(_ error: PostgresError?) {
        swap(&committing, &awaitingCommit)
        for (pending, _) in committing {
            let answeredQuery = pipeline.answered(now: loop.now)
            assert(answeredQuery === pending, "writes are answered at their sync, in order")
        }
        for (pending, value) in committing {
            pending.finish(error.map { .failure($0) } ?? .success(value))
        }
        committing.removeAll(keepingCapacity: true)
    }

    /// The members of a commit group that will not commit (a neighbour failed, or the commit
    /// did) leave the pipeline, to be sent again, each alone (`resubmit`). Nothing of theirs
    /// committed, so this is safe for writes. Not counted as their one resend
    /// (`PendingQuery.resent`): the fault was not theirs.
    private func resendAwaitingCommit() {
        for (pending, _) in awaitingCommit {
            let answeredQuery = pipeline.answered(now: loop.now)
            assert(answeredQuery === pending, "writes are answered at their sync, in order")
            if !pending.isFinished {
                pending.leftGroup = true
                resubmissions.append(pending)
            }
        }
        awaitingCommit.removeAll(keepingCapacity: true)
    }

    /// Hands the queries to send again to the pool. Not into this connection if it just died (a
    /// 57P01 among the results, then the end of the stream): libpq knows by now, and sent there,
    /// queries that certainly did not commit would fail as "outcome unknown".
    private func resubmit() {
        if state == .ready, let pg, PQstatus(pg) == CONNECTION_BAD {
            broken(Self.failure(.connectionLost, pg))
        }
        swap(&resubmitting, &resubmissions)
        for pending in resubmitting { delegate.connection(self, resubmits: pending) }
        resubmitting.removeAll(keepingCapacity: true)
    }

    // MARK: Closing

    /// The connection broke: every query in flight fails (its outcome is unknown), and the pool
    /// is told; it never hands this connection out again. `logged`: the cause has its own line.
    private func broken(_ error: PostgresError, logged: Bool = false) {
        guard state == .ready else { return }
        // Held row writes were never sent: certainly not run, so they go to another connection
        // rather than fail as "outcome unknown" with the ones in flight.
        var held: [PendingQuery] = []
        swap(&held, &heldRowWrites)
        let inFlight = release()
        for query in inFlight { query.finish(.failure(error)) }
        delegate.connectionClosed(self, error: logged ? nil : error)
        for query in held where !query.isFinished { delegate.connection(self, resubmits: query) }
    }

    /// Closes an idle or retiring connection on purpose.
    func close() {
        let wasOpen = state != .closed
        let inFlight = release()
        for query in inFlight { query.finish(.failure(PostgresError(.shutdown, message: "connection closed"))) }
        if wasOpen { delegate.connectionClosed(self, error: nil) }
    }

    /// Frees the handle and the socket; returns the queries that were in flight.
    private func release() -> [PendingQuery] {
        loop.cancel(connectTimer)
        loop.cancel(pipelineTimer)
        if fd >= 0 { loop.deregister(fd: fd) }
        fd = -1
        if let pg { PQfinish(pg) }
        pg = nil
        state = .closed
        unsynced = 0
        expected = FIFO()
        awaitingCommit.removeAll()  // still in the pipeline: they fail with the others (outcome unknown)
        syncError = nil
        let held = heldRowWrites  // never sent: they fail with the others
        heldRowWrites.removeAll()
        return pipeline.removeAll() + held
    }

    private func setInterest(_ wanted: Interest) {
        guard wanted != interest, fd >= 0 else { return }
        interest = wanted
        do {
            try loop.reregister(fd: fd, generation: generation, interest: wanted)
        } catch {
            broken(PostgresError(.connectionLost, message: "epoll: \(error)"))
        }
    }

    /// libpq prints NOTICE messages to stderr by default; they are not errors and not JSON.
    static func silenceNotices(_ pg: OpaquePointer) {
        PQsetNoticeProcessor(pg, { _, _ in }, nil)
    }

    // MARK: Errors

    /// A connection-level failure with libpq's message and, when the server said why (a FATAL
    /// during start-up or before closing: 28P01, 53300, 57P01, 57P03, ...), its SQLSTATE.
    static func failure(_ kind: PostgresError.Kind, _ pg: OpaquePointer) -> PostgresError {
        let message = errorMessage(pg)
        return PostgresError(kind, sqlState: sqlState(in: message), message: message)
    }

    /// The SQLSTATE in a verbose libpq message: `FATAL:  57P01: terminating connection ...`.
    static func sqlState(in message: String) -> String? {
        let bytes = Array(message.utf8)
        for severity in ["FATAL:  ", "ERROR:  ", "PANIC:  "] {
            let marker = Array(severity.utf8)
            var i = 0
            while i + marker.count + 6 <= bytes.count {
                if Array(bytes[i..<(i + marker.count)]) == marker {
                    let code = bytes[(i + marker.count)..<(i + marker.count + 5)]
                    if bytes[i + marker.count + 5] == UInt8(ascii: ":"),
                       code.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) }) {
                        return String(decoding: code, as: UTF8.self)
                    }
                }
                i += 1
            }
        }
        return nil
    }

    /// libpq's message for the connection, one line per problem. A lost connection's text is
    /// libpq's generic "server closed the connection unexpectedly ..." unless the server said why
    /// first (then its FATAL message leads, e.g. "terminating connection due to administrator command").
    static func errorMessage(_ pg: OpaquePointer) -> String {
        guard let text = PQerrorMessage(pg) else { return "unknown libpq error" }
        return libpqMessage(text)
    }

    /// libpq's messages end in a newline (and sometimes spaces); several problems are separated by
    /// newlines: one line, joined with "; ".
    static func libpqMessage(_ text: UnsafePointer<CChar>) -> String {
        var lines: [String] = []
        for var line in String(cString: text).split(whereSeparator: \.isNewline) {
            while line.first == " " || line.first == "\t" { line.removeFirst() }
            while line.last == " " || line.last == "\t" { line.removeLast() }
            // Verbose messages name the server's source line: not for logs.
            if !line.isEmpty && !line.hasPrefix("LOCATION:") { lines.append(String(line)) }
        }
        return lines.isEmpty ? "unknown libpq error" : lines.joined(separator: "; ")
    }

    /// The SQLSTATE and primary message of an error result.
    static func serverError(_ result: OpaquePointer) -> PostgresError {
        let sqlState = PQresultErrorField(result, Self.diagSQLState).map { String(cString: $0) }
        let message = PQresultErrorField(result, Self.diagMessagePrimary).map { String(cString: $0) } ?? "server error"
        return PostgresError(.server, sqlState: sqlState, message: message)
    }

    /// postgres_ext.h's PG_DIAG_SQLSTATE ('C') and PG_DIAG_MESSAGE_PRIMARY ('M'): character macros,
    /// which Swift does not import.
    static let diagSQLState = Int32(UInt8(ascii: "C"))
    static let diagMessagePrimary = Int32(UInt8(ascii: "M"))
}

/// Reads one environment variable (libpq's PG* variables matter to the resolver too).
enum ProcessEnvironment {
    static func value(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}
