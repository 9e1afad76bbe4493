import Net

/// What one connection has sent and PostgreSQL has not yet answered, and the decisions that follow
/// from it: whether the connection takes new work (the isolation rule), which statements have
/// passed their deadline, when to send a cancel request, when to give the connection up.
///
/// Pure: time comes in as an argument, decisions go out as values, and `PostgresConnection` carries
/// them out (postgres-nio's connection state machine habit). Unit-tested with a manual clock.
///
/// **The isolation rule** (docs/ARCHITECTURE.md, "Database deadlines and isolation"): pipelining
/// is fast until one statement blocks, and then everything queued behind it on that connection
/// waits too. So:
/// - a connection takes new work only while it keeps answering: nothing in flight, or an answer
///   (or the first send) less than `stallThreshold` ago. What can be caught behind a statement
///   that then blocks is what arrived within that time; a deep pipeline that keeps answering
///   stays open (its head may be older than the threshold merely because it waited its turn);
/// - a row write (an UPDATE or DELETE of an existing row, a keyed INSERT: it can wait on a row
///   lock for as long as another transaction holds it; reads and plain INSERTs wait only on table
///   locks and stalled paths, which stall everything anyway) that heads the pipeline unanswered
///   for `rowLockGrace` while statements wait behind it gets a cancel request: it is sent again
///   (it did not commit: 57014) *isolated*, and the statements behind it run at once;
/// - nothing is queued behind an isolated row write.
struct PostgresPipeline {
    struct Rules {
        /// Statements in flight on one connection at most.
        var maxDepth = 64
        /// No answer for this long with statements in flight: the connection takes no new work.
        /// 10 ms is 20–50 round trips of a loaded pipeline here (a `GET /todos/{id}` batch
        /// answers in 0.2–0.5 ms, a commit in 0.3–1 ms), and well inside a request's latency budget.
        var stallThreshold = TimeSpan.milliseconds(10)
        /// A row write unanswered this long at the head with statements behind it is presumed
        /// waiting on a row lock: it is cancelled and sent again alone. Above a loaded write's
        /// round trip here (p99 of a PUT's database time a few ms), below the 50 ms that the
        /// statements behind it may wait.
        var rowLockGrace = TimeSpan.milliseconds(30)
        /// Rescue cancels per row write at most (see `rescueCheck`).
        var maxRescues = 3
        /// An abandoned statement at the head unanswered this long gets a cancel request; the
        /// grace lets a statement that is merely queued behind a cancelled one run on its own.
        /// Also the wait, after a cancel reached the server, before concluding that it was ignored
        /// and sending another (see `check`).
        var cancelGrace = TimeSpan.milliseconds(50)
        /// Cancel requests per drain at most; beyond that the connection is given up (replaced):
        /// each cancel costs the server a new connection, and a connection needing more is not
        /// worth it.
        var maxCancels = 3
        /// Abandoned statements in flight and no answer at all for this long since the first was
        /// abandoned (a frozen path, a cancel that did not arrive): the connection is given up
        /// and replaced.
        var drainLimit = TimeSpan.seconds(3)
    }

    /// Where the last cancel request sent from this connection is (`PostgresCanceller.Ticket`).
    enum CancelDelivery: Equatable {
        /// None on its way: none sent, or it could not be started (no free slot).
        case none
        /// Sent, not yet taken by the server (a slow connect, a frozen path).
        case pending
        /// The server took it at this time and signalled the backend.
        case delivered(MonotonicTime)
    }

    /// What `check` found.
    struct Check {
        /// Statements whose deadline passed: their callers get a timeout now.
        var expired: [PendingQuery] = []
        /// Send a cancel request for the statement PostgreSQL is running.
        var cancel = false
        /// The cancel is for a row write blocking the statements behind it (not for a deadline).
        var rescue = false
        /// Close the connection (its in-flight statements fail as connection lost).
        var giveUp = false
        /// When to check again (nil: nothing to watch).
        var next: MonotonicTime?
    }

    let rules: Rules
    private(set) var statements = FIFO<PendingQuery>()
    /// Isolated row writes in flight (nothing may follow them).
    private(set) var isolated = 0
    /// Statements in flight whose caller already got its timeout: their answers will be dropped.
    private(set) var abandoned = 0
    private(set) var cancels = 0
    /// The last time PostgreSQL answered anything (or the pipeline was empty).
    private(set) var lastProgress: MonotonicTime
    /// Statements at the front whose results came and that wait for their sync (a write's commit,
    /// a commit group's members): PostgreSQL is past them. Results come in order, so they are
    /// always the first `resultsIn`; the statement PostgreSQL runs is the next (`running`).
    private(set) var resultsIn = 0
    /// When the running statement became the one running (the last answer, or the first send).
    private var headSince: MonotonicTime
    /// When the first of the abandoned statements in flight was abandoned.
    private var drainingSince: MonotonicTime
    /// Until then, a 57014 on this connection may be our own cancel landing on the statement
    /// after the one it was meant for (a cancel interrupts whatever runs when it arrives: the
    /// statement it was sent for may have just finished).
    private(set) var ourCancelWindowEnd: MonotonicTime?

    init(rules: Rules, now: MonotonicTime) {
        self.rules = rules
        lastProgress = now
        headSince = now
        drainingSince = now
    }

    var count: Int { statements.count }
    var isEmpty: Bool { statements.isEmpty }
    /// Abandoned statements are still running: no new work until they are answered or given up.
    var isDraining: Bool { abandoned > 0 }

    /// The statement PostgreSQL is running (or will run next): the first whose result has not come.
    /// Nil when only syncs are pending (every statement in flight answered, commits to confirm).
    var running: PendingQuery? { resultsIn < statements.count ? statements[resultsIn] : nil }

    /// The isolation rule (see the type's comment).
    /// `held`: statements the connection holds to send at the end of the iteration (they count
    /// toward the depth).
    func acceptsWork(now: MonotonicTime, held: Int = 0) -> Bool {
        guard !statements.isEmpty else { return held < rules.maxDepth }
        return isolated == 0 && abandoned == 0 && statements.count + held < rules.maxDepth
            && now - lastProgress < rules.stallThreshold
    }

    mutating func sent(_ query: PendingQuery, now: MonotonicTime) {
        if statements.isEmpty {
            headSince = now
            lastProgress = now
        }
        query.sentAt = now
        // A statement sent again (after a rescue, on any connection) starts with no cancels: the
        // ones counted here are this connection's, for this send.
        query.deadlineCancels = 0
        query.rescues = 0
        statements.append(query)
        if query.isolated { isolated += 1 }
    }

    /// When the running row write should be checked for a lock wait (other statements wait on it:
    /// behind it, or its commit group's members before it, whose commit waits for it). A cancel
    /// that reaches the server between two statements is ignored there (the backend is reading its
    /// next command), so an unanswered row write gets up to `maxRescues` of them.
    var rescueCheck: MonotonicTime? {
        guard statements.count > 1, let head = running, head.mayWaitOnRowLock, !head.isolated,
              !head.cancelRequested, !head.isFinished, head.rescues < rules.maxRescues else { return nil }
        return head.rescues == 0 ? max(head.sentAt, headSince) + rules.rowLockGrace : head.lastCancel + rules.cancelGrace
    }

    /// The result of a write that waits for its sync (alone, or in a commit group) came:
    /// PostgreSQL moved on to the next statement. It stays in flight until the sync answers
    /// (`answered`). Progress for the stall threshold, and the next statement's running time
    /// starts now (a group's members run one after another; measured from the group's first send,
    /// a long group looked like a lock wait).
    mutating func resultArrived(_ query: PendingQuery, now: MonotonicTime) {
        assert(running === query, "results arrive in the order the statements were sent")
        resultsIn += 1
        lastProgress = now
        headSince = now
    }

    /// PostgreSQL answered the head statement; returns it (finished already if abandoned).
    mutating func answered(now: MonotonicTime) -> PendingQuery {
        let query = statements.removeFirst()
        // The front is one of the answered ones while there are any (they are the first `resultsIn`).
        if resultsIn > 0 { resultsIn -= 1 }
        if query.isolated { isolated -= 1 }
        if query.isFinished { abandoned -= 1 }
        lastProgress = now
        headSince = now
        if abandoned == 0 { cancels = 0 }
        return query
    }

    /// Whether a 57014 answered at `now` may come from our own cancel (then the statement did not
    /// run to its end and is sent again): within 1 s of sending one, of its delivery, or while one
    /// is still on its way.
    func mayBeOurCancel(now: MonotonicTime, delivery: CancelDelivery = .none) -> Bool {
        if let end = ourCancelWindowEnd, now <= end { return true }
        switch delivery {
        case .none: return false
        case .pending: return ourCancelWindowEnd != nil
        case .delivered(let at): return ourCancelWindowEnd != nil && now <= at + .seconds(1)
        }
    }

    /// Everything in flight, removed (the connection closed).
    mutating func removeAll() -> [PendingQuery] {
        resultsIn = 0
        isolated = 0
        abandoned = 0
        cancels = 0
        return statements.drain()
    }

    /// Deadlines, cancels and giving up, at `now`. The statements listed in `expired` count as
    /// abandoned from here on; the caller finishes them with a timeout.
    ///
    /// `delivery`: where the last cancel request sent from this connection is. A head still
    /// unanswered `cancelGrace` after its cancel reached the server was not interrupted:
    /// PostgreSQL ignores a cancel that arrives while the backend reads its next message, as when
    /// the statement was sent a moment before its cancel. An abandoned head gets one more
    /// (`maxCancelRepeats`; not counted in the drain's `maxCancels`: a head that is merely slow,
    /// committing or starved, must not cost its connection). A row write blocking others gets
    /// up to `maxRescues` in all. A cancel not yet delivered (a frozen path, a slow server) is
    /// never repeated: that would only pile up requests that all land later.
    mutating func check(now: MonotonicTime, delivery: CancelDelivery = .pending) -> Check {
        var check = Check()
        var earliest = MonotonicTime.distantFuture
        for offset in 0..<statements.count {
            let query = statements[offset]
            guard !query.isFinished else { continue }
            if query.deadline <= now {
                check.expired.append(query)
            } else if query.deadline < earliest {
                earliest = query.deadline
            }
        }
        if abandoned == 0 && !check.expired.isEmpty { drainingSince = now }
        abandoned += check.expired.count
        guard !statements.isEmpty else { return check }
        if isDraining {
            // No answer since the draining began (or since the last answer during it).
            let quietSince = max(lastProgress, drainingSince)
            if now - quietSince >= rules.drainLimit {
                check.giveUp = true
                return check
            }
            earliest = min(earliest, quietSince + rules.drainLimit)
        }
        // Cancels are for the statement PostgreSQL runs (`running`): the ones before it answered
        // and wait only for their sync. None (every statement answered, commits to confirm):
        // nothing to cancel, and a drain that gets no answer is still given up above.
        guard let head = running else {
            check.next = earliest == .distantFuture ? nil : earliest
            return check
        }
        var mayRescue = !isDraining
        if isDraining {
            // The head's own expiry finishes it only after this check's caller acts, so it counts.
            let headAbandoned = head.isFinished || check.expired.contains { $0 === head }
            if headAbandoned && !head.cancelRequested {
                // Expired in this check: at once (a group's members share a deadline, so the first
                // expired may be an answered member before it).
                let cancelAt = check.expired.contains { $0 === head } ? now : headSince + rules.cancelGrace
                if now >= cancelAt {
                    if cancels >= rules.maxCancels {
                        check.giveUp = true
                        return check
                    }
                    head.deadlineCancels = 1
                    cancels += 1
                    sendCancel(for: head, now: now, into: &check)
                    earliest = min(earliest, now + rules.cancelGrace)
                } else {
                    earliest = min(earliest, cancelAt)
                }
            } else if headAbandoned && head.deadlineCancels <= Self.maxCancelRepeats {
                if let repeatAt = repeatAt(head, delivery: delivery) {
                    if now >= repeatAt {
                        head.deadlineCancels += 1
                        sendCancel(for: head, now: now, into: &check)
                    } else {
                        earliest = min(earliest, repeatAt)
                    }
                } else {
                    earliest = min(earliest, now + rules.cancelGrace)  // not delivered yet: look again
                }
            }
            // The running statement still waited for, with abandoned ones before or behind it
            // (a commit group's member answered and abandoned while the next waits on a row lock):
            // the rescue below still cancels a blocked row write.
            mayRescue = !headAbandoned
        }
        if mayRescue, let rescueAt = rescueCheck {
            let after = head.rescues == 0 ? rescueAt : repeatAt(head, delivery: delivery).map { max($0, rescueAt) }
            if let after, now < after {
                earliest = min(earliest, after)
            } else if after == nil {
                earliest = min(earliest, now + rules.cancelGrace)  // not delivered yet: look again
            } else {
                head.rescues += 1
                sendCancel(for: head, now: now, into: &check)
                check.rescue = true
                // Another try if this cancel reaches the server between two statements (ignored).
                if let again = rescueCheck { earliest = min(earliest, again) }
            }
        }
        check.next = earliest == .distantFuture ? nil : earliest
        return check
    }

    /// One repeat of a deadline cancel: the ignored-cancel race needs no more (the repeat arrives
    /// while the statement runs).
    static let maxCancelRepeats = 1

    /// When the head's cancel may be repeated: `cancelGrace` after it reached the server (after it
    /// was sent, when it could not be started); nil while it is on its way.
    private func repeatAt(_ head: PendingQuery, delivery: CancelDelivery) -> MonotonicTime? {
        switch delivery {
        case .none: return head.lastCancel + rules.cancelGrace
        case .pending: return nil
        case .delivered(let at): return max(at, head.lastCancel) + rules.cancelGrace
        }
    }

    private mutating func sendCancel(for head: PendingQuery, now: MonotonicTime, into check: inout Check) {
        head.lastCancel = now
        check.cancel = true
        // It may land after the head finished, on a statement behind it.
        ourCancelWindowEnd = now + .seconds(1)
    }
}
