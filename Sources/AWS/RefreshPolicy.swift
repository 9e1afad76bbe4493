import Net

/// When to fetch something that expires or changes (temporary AWS credentials, a rotated secret):
/// a pure state machine on an injected clock; `BackgroundRefresher` carries out its answers.
///
/// - a scheduled fetch at `nextDue` (set by the last success: the credentials' expiry minus a
///   margin, or the secret's refresh interval);
/// - an on-demand fetch (PostgreSQL refused the password) at most once per `demandGap`, so a
///   fleet of failing connections makes one call, not one each;
/// - after a failure, retries with capped exponential backoff; the first failure of a run is
///   logged, the rest are not, and the success that ends the run says so.
public struct RefreshPolicy: Sendable {
    public enum Reason: String, Sendable {
        case start, schedule, rejected, retry
    }

    public struct Settings: Sendable {
        public var demandGap = TimeSpan.seconds(10)
        public var retryBase = TimeSpan.seconds(5)
        public var retryCap = TimeSpan.seconds(60)
        public init() {}
    }

    public let settings: Settings
    public private(set) var nextDue: MonotonicTime?
    public private(set) var inFlight: Reason?
    public private(set) var failures = 0
    private var lastStart: MonotonicTime?
    /// A refusal came inside the gap: the fetch at `nextDue` is for it.
    private var demandPending = false

    public init(settings: Settings = Settings()) {
        self.settings = settings
    }

    /// The timer fired: start a fetch if one is due and none runs.
    public mutating func timerFired(now: MonotonicTime) -> Reason? {
        guard inFlight == nil, let due = nextDue, now >= due else { return nil }
        return begin(demandPending ? .rejected : failures > 0 ? .retry : .schedule, now: now)
    }

    /// The thing fetched was refused (a stale password): fetch now unless one runs or one started
    /// less than `demandGap` ago; in that case the fetch is due when the gap ends (`nextDue`
    /// moves earlier: the caller re-arms its timer), so a rotation just after a fetch waits for
    /// the gap, not for the next refusal after it.
    public mutating func demanded(now: MonotonicTime) -> Reason? {
        guard inFlight == nil else { return nil }
        if let lastStart, now - lastStart < settings.demandGap {
            let allowed = lastStart + settings.demandGap
            if nextDue.map({ allowed < $0 }) ?? true {
                nextDue = allowed
                demandPending = true
            }
            return nil
        }
        return begin(.rejected, now: now)
    }

    /// A fetch at start-up (synchronous, before the service listens).
    public mutating func starting(now: MonotonicTime) -> Reason {
        begin(.start, now: now)
    }

    private mutating func begin(_ reason: Reason, now: MonotonicTime) -> Reason {
        inFlight = reason
        demandPending = false
        lastStart = now
        return reason
    }

    public enum Report: Equatable, Sendable {
        /// Normal success.
        case refreshed
        /// Success after `failures` failed attempts (log that the run of failures ended).
        case recovered(failures: Int)
    }

    /// The fetch succeeded; the next is due after `next` (nil: only on demand).
    public mutating func succeeded(now: MonotonicTime, next: TimeSpan?) -> Report {
        let report: Report = failures > 0 ? .recovered(failures: failures) : .refreshed
        inFlight = nil
        failures = 0
        nextDue = next.map { now + $0 }
        return report
    }

    /// The fetch failed: retry after the backoff, but no later than `latest` (say, the old
    /// credentials' expiry). True when this failure should be logged (the first of a run).
    public mutating func failed(now: MonotonicTime, latest: MonotonicTime? = nil) -> Bool {
        inFlight = nil
        failures += 1
        let exponent = min(failures - 1, 16)
        let backoff = TimeSpan(nanoseconds: min(settings.retryCap.nanoseconds, settings.retryBase.nanoseconds << exponent))
        var due = now + backoff
        // Before the old credentials' last moment, not after it: once that has passed, the
        // backoff applies (a dead endpoint is not polled every second).
        if let latest, latest > now, latest < due { due = max(latest, now + .seconds(1)) }
        nextDue = due
        return failures == 1
    }
}
