import Net

/// The writer as the whole process sees it, through a failover: writable, or read-only (SQLSTATE
/// 25006, what a demoted Aurora writer answers) until a probe connection finds a writable one.
///
/// Without it every read-only error made every loop drop and reopen all its connections: 329–426
/// new connections in 5 s from one process (issue "database faults"). Now one event replaces the
/// writer connections once: while the writer is read-only the pools open nothing (their open
/// connections still serve reads; writes fail fast with 503), one probe connection at a time
/// checks for a writable writer (libpq's `target_session_attrs=read-write`) with doubling delays,
/// and when it finds one every loop replaces its writer connections once. A lost connection
/// replaces the others at most once per `recycleInterval`. Pure: the caller passes the time,
/// holds the lock and carries out the actions (`PostgresEndpoint`).
struct WriterFailover {
    struct Rules {
        var firstProbe = TimeSpan.seconds(1)
        var probeCap = TimeSpan.seconds(5)
        var recycleInterval = TimeSpan.seconds(10)
    }

    enum State: Equatable {
        case writable
        case readOnly(since: MonotonicTime)
    }

    enum Action: Equatable {
        /// The writer turned read-only: log it, readiness answers 503.
        case enteredReadOnly
        /// Open one probe connection at this time and report with `probeFinished`.
        case probe(at: MonotonicTime)
        /// Every loop replaces its writer connections (idle ones now, busy ones when done).
        case recycle
        /// A writable writer is back after this long read-only.
        case recovered(after: TimeSpan)
    }

    let rules: Rules
    private(set) var state = State.writable
    private var probeDelay: TimeSpan
    /// A probe is scheduled or running (one at a time).
    private var probing = false
    private var lastRecycle: MonotonicTime?

    init(rules: Rules = Rules()) {
        self.rules = rules
        probeDelay = rules.firstProbe
    }

    /// Pools open connections only while the writer is writable (the probe is the exception).
    var opensAllowed: Bool { state == .writable }

    mutating func sawReadOnly(now: MonotonicTime) -> [Action] {
        guard state == .writable else { return [] }
        state = .readOnly(since: now)
        probeDelay = rules.firstProbe
        probing = true
        return [.enteredReadOnly, .probe(at: now + probeDelay)]
    }

    mutating func probeFinished(writable: Bool, now: MonotonicTime) -> [Action] {
        probing = false
        guard case .readOnly(let since) = state else { return [] }
        if writable {
            state = .writable
            lastRecycle = now
            return [.recycle, .recovered(after: now - since)]
        }
        probeDelay = min(rules.probeCap, TimeSpan(nanoseconds: probeDelay.nanoseconds * 2))
        probing = true
        return [.probe(at: now + probeDelay)]
    }

    /// Something else (the readiness check) found the writer writable: probe now rather than at
    /// the next delay.
    mutating func writableSeen(now: MonotonicTime) -> [Action] {
        guard case .readOnly = state, !probing else { return [] }
        probing = true
        return [.probe(at: now)]
    }

    mutating func connectionLost(now: MonotonicTime) -> [Action] {
        guard state == .writable else { return [] }
        if let lastRecycle, now - lastRecycle < rules.recycleInterval { return [] }
        lastRecycle = now
        return [.recycle]
    }
}
