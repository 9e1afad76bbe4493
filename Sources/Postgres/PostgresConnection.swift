import CLibPQ
import Glibc
import Net

/// What a connection tells its pool. Called on the connection's loop.
protocol PostgresConnectionDelegate: AnyObject {
    func connectionReady(_ connection: PostgresConnection)
    func connectionFailed(_ connection: PostgresConnection, error: PostgresError)
    func connectionClosed(_ connection: PostgresConnection, error: PostgresError?)
    func connectionHasCapacity(_ connection: PostgresConnection)
    func connectionSawReadOnly(_ connection: PostgresConnection)
}

/// One libpq connection driven by an event loop without ever blocking it.
///
/// Connect: host names resolved off the loop (`HostResolver`), then `PQconnectStartParams` and
/// `PQconnectPoll` on readiness of the socket registered in the loop's epoll, bounded by our own
/// connect timer. Then non-blocking and in pipeline mode: every query is `PQsendQueryPrepared`
/// (after a one-time `PQsendPrepare` of its SQL on this connection). A write is followed at once
/// by `PQpipelineSync`, so it is its own implicit transaction and one failing does not abort
/// another. Reads sent during one loop iteration share one sync, sent when the iteration ends:
/// one `send` and one backend wake-up for all of them instead of one each (libpq 15 flushes at
/// every sync). They form one implicit read-only transaction; if one fails (a statement timeout),
/// PostgreSQL aborts the rest of the batch, and those are sent again, each with its own sync.
/// Results are binary format.
///
/// Loop-owned; results are matched to queries by order (`expected`).
final class PostgresConnection: Selectable {
    enum State { case resolving, connecting, ready, closed }

    private enum Expected {
        case prepare(sql: String)
        /// `batched`: the query, when it shares a sync with others and may be sent again alone
        /// if a neighbour's failure aborted it.
        case query((Result<PostgresResult, PostgresError>) -> Void, batched: PostgresQuery?)
        case sync
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
    /// SQL → statement name, for statements prepared on this connection.
    private var prepared: [String: String] = [:]
    private var statementCounter = 0
    private var headResult: PostgresResult?
    private var headError: PostgresError?
    /// The head query was skipped because an earlier statement of its batch failed.
    private var headAborted = false
    private var prepareError: PostgresError?
    /// Reads sent since the last sync, and whether the end-of-iteration sync is scheduled.
    private var unsyncedReads = 0
    private var syncScheduled = false

    private(set) var queriesInFlight = 0
    let openedAt: MonotonicTime
    var expiresAt: MonotonicTime
    private(set) var lastActive: MonotonicTime
    /// No new queries; closes once its in-flight queries are done.
    var retiring = false
    private lazy var connectTimer = LoopTimer { [unowned self] in
        self.failConnect(PostgresError(.unavailable, message: "connection attempt timed out"))
    }

    init(id: Int, loop: EventLoop, delegate: PostgresConnectionDelegate, lifetime: TimeSpan) {
        self.id = id
        self.loop = loop
        self.delegate = delegate
        openedAt = loop.now
        expiresAt = loop.now + lifetime
        lastActive = loop.now
    }

    // MARK: Connecting

    func connect(_ settings: PostgresConnectionSettings) {
        let hosts = (settings["host"] ?? ProcessEnvironment.value("PGHOST") ?? "").split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard settings["hostaddr"] == nil, hosts.contains(where: HostResolver.needsLookup) else {
            startConnecting(settings)
            return
        }
        let me = LoopBound(self)
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
        default: failConnect(PostgresError(.unavailable, message: Self.errorMessage(pg)))
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
            failConnect(PostgresError(.unavailable, message: Self.errorMessage(pg)))
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
            failConnect(PostgresError(.unavailable, message: Self.errorMessage(pg)))
            return
        }
        state = .ready
        lastActive = loop.now
        setInterest(.read)
        delegate.connectionReady(self)
    }

    private func failConnect(_ error: PostgresError) {
        guard state == .resolving || state == .connecting else { return }
        release()
        delegate.connectionFailed(self, error: error)
    }

    // MARK: Queries

    /// Sends `query`; `completion` runs on this loop with its result. Only on a ready connection.
    func send(_ query: PostgresQuery, completion: @escaping (Result<PostgresResult, PostgresError>) -> Void) {
        send(query, batch: query.readOnly, completion: completion)
    }

    private func send(_ query: PostgresQuery, batch: Bool, completion: @escaping (Result<PostgresResult, PostgresError>) -> Void) {
        guard state == .ready, let pg else {
            completion(.failure(PostgresError(.connectionLost, message: "connection is not open")))
            return
        }
        // A write must not join the reads' implicit transaction, nor may its Prepare: close their
        // batch first (a failure in it would otherwise skip the Prepare too).
        if !batch && unsyncedReads > 0 {
            syncReads()
            guard state == .ready else {
                completion(.failure(PostgresError(.connectionLost, message: "connection is not open")))
                return
            }
        }
        let name: String
        if let known = prepared[query.sql] {
            name = known
        } else {
            statementCounter += 1
            name = "s\(statementCounter)"
            let sent = name.withCString { PQsendPrepare(pg, $0, query.sql, Int32(query.binds.count), nil) }
            guard sent == 1 else {
                completion(.failure(PostgresError(.connectionLost, message: Self.errorMessage(pg))))
                broken(PostgresError(.connectionLost, message: Self.errorMessage(pg)))
                return
            }
            expected.append(.prepare(sql: query.sql))
            prepared[query.sql] = name
        }
        // withCString, not the implicit String-to-pointer conversion: for a short (inline) string
        // such as "s1" that conversion allocates a copy, once per query.
        let sent = name.withCString { statement in
            withCStrings(query.binds) { values in
                PQsendQueryPrepared(pg, statement, Int32(values.count), values.baseAddress, nil, nil, 1) == 1
                    && (batch || PQpipelineSync(pg) == 1)
            }
        }
        guard sent else {
            completion(.failure(PostgresError(.connectionLost, message: Self.errorMessage(pg))))
            broken(PostgresError(.connectionLost, message: Self.errorMessage(pg)))
            return
        }
        expected.append(.query(completion, batched: batch ? query : nil))
        queriesInFlight += 1
        lastActive = loop.now
        if batch {
            unsyncedReads += 1
            if !syncScheduled {
                syncScheduled = true
                loop.atIterationEnd { [weak self] in self?.syncReads() }
            }
            return
        }
        expected.append(.sync)
        flush()
    }

    /// Ends the current batch of reads with one sync, which also sends them.
    private func syncReads() {
        syncScheduled = false
        guard unsyncedReads > 0, state == .ready, let pg else { return }
        unsyncedReads = 0
        guard PQpipelineSync(pg) == 1 else {
            broken(PostgresError(.connectionLost, message: Self.errorMessage(pg)))
            return
        }
        expected.append(.sync)
        flush()
    }

    private func flush() {
        guard let pg else { return }
        switch PQflush(pg) {
        case 0: setInterest(.read)
        case 1: setInterest([.read, .write])  // the socket is full: finish when writable
        default: broken(PostgresError(.connectionLost, message: Self.errorMessage(pg)))
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
                    broken(PostgresError(.connectionLost, message: Self.errorMessage(pg)))
                    return
                }
                readResults()
            }
            if state == .ready && PQstatus(pg) == CONNECTION_BAD {
                broken(PostgresError(.connectionLost, message: Self.errorMessage(pg)))
            }
        case .resolving, .closed:
            break
        }
    }

    /// Takes every complete result libpq has and completes queries in order.
    private func readResults() {
        guard let pg else { return }
        var completed = false
        while state == .ready, let head = expected.first {
            if PQisBusy(pg) != 0 { break }
            let result = PQgetResult(pg)
            switch head {
            case .prepare(let sql):
                guard let result else {
                    expected.removeFirst()
                    continue
                }
                switch PQresultStatus(result) {
                case PGRES_FATAL_ERROR:
                    prepareError = Self.serverError(result)
                    prepared[sql] = nil  // prepare again next time
                case PGRES_PIPELINE_ABORTED:
                    // Skipped with the rest of a batch a neighbour failed: the statement does not
                    // exist; the next use (the aborted query's retry included) prepares it again.
                    prepared[sql] = nil
                default:
                    break
                }
                PQclear(result)
            case .query(let completion, let batched):
                guard let result else {
                    expected.removeFirst()
                    queriesInFlight -= 1
                    // Skipped because a neighbour in its batch failed, or its statement's Prepare
                    // was (26000, invalid_sql_statement_name, in a later batch): run it again, alone.
                    if headAborted || headError?.sqlState == "26000", let batched {
                        headAborted = false
                        headResult = nil
                        headError = nil
                        send(batched, batch: false, completion: completion)
                        continue
                    }
                    headAborted = false
                    let outcome: Result<PostgresResult, PostgresError>
                    if let error = headError {
                        outcome = .failure(error)
                    } else if let value = headResult {
                        outcome = .success(value)
                    } else {
                        outcome = .failure(PostgresError(.server, message: "no result"))
                    }
                    headResult = nil
                    headError = nil
                    completed = true
                    if case .failure(let error) = outcome, error.isReadOnlyTransaction {
                        delegate.connectionSawReadOnly(self)
                    }
                    completion(outcome)
                    continue
                }
                switch PQresultStatus(result) {
                case PGRES_TUPLES_OK, PGRES_COMMAND_OK:
                    if headResult == nil { headResult = PostgresResult(result) } else { PQclear(result) }
                case PGRES_FATAL_ERROR:
                    headError = Self.serverError(result)
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
                    broken(PostgresError(.connectionLost, message: "unexpected end of results"))
                    return
                }
                if PQresultStatus(result) == PGRES_PIPELINE_SYNC {
                    expected.removeFirst()
                    prepareError = nil
                }
                PQclear(result)
            }
        }
        if completed && state == .ready {
            lastActive = loop.now
            delegate.connectionHasCapacity(self)
        }
    }

    // MARK: Closing

    /// The connection broke: every query in flight fails (its outcome is unknown), and the pool
    /// is told; it never hands this connection out again.
    private func broken(_ error: PostgresError) {
        guard state == .ready else { return }
        let pending = expected.drain()
        release()
        for item in pending {
            if case .query(let completion, _) = item { completion(.failure(error)) }
        }
        delegate.connectionClosed(self, error: error)
    }

    /// Closes an idle or retiring connection on purpose.
    func close() {
        let wasOpen = state != .closed
        let pending = expected.drain()
        release()
        for item in pending {
            if case .query(let completion, _) = item {
                completion(.failure(PostgresError(.shutdown, message: "connection closed")))
            }
        }
        if wasOpen { delegate.connectionClosed(self, error: nil) }
    }

    private func release() {
        loop.cancel(connectTimer)
        if fd >= 0 { loop.deregister(fd: fd) }
        fd = -1
        if let pg { PQfinish(pg) }
        pg = nil
        state = .closed
        queriesInFlight = 0
        unsyncedReads = 0
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

    static func errorMessage(_ pg: OpaquePointer) -> String {
        guard let text = PQerrorMessage(pg) else { return "unknown libpq error" }
        return String(String(cString: text).reversed().drop { $0 == "\n" || $0 == " " }.reversed())
    }

    /// The SQLSTATE ('C' field) and primary message ('M') of an error result.
    static func serverError(_ result: OpaquePointer) -> PostgresError {
        let sqlState = PQresultErrorField(result, 67).map { String(cString: $0) }
        let message = PQresultErrorField(result, 77).map { String(cString: $0) } ?? "server error"
        return PostgresError(.server, sqlState: sqlState, message: message)
    }
}

/// Reads one environment variable (libpq's PG* variables matter to the resolver too).
enum ProcessEnvironment {
    static func value(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}
