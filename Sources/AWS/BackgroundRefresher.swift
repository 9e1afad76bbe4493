import Dispatch
import Net
import Synchronization

/// Runs a `RefreshPolicy`'s fetches on a serial queue of its own: never on an event loop, one at
/// a time, each scheduled with `asyncAfter` at the policy's next due time.
public final class BackgroundRefresher: Sendable {
    /// What one fetch found: when the next is due (nil: only on demand), or why it failed and the
    /// latest moment a retry should happen.
    public enum Outcome: Sendable {
        case success(next: TimeSpan?)
        case failure(latest: MonotonicTime?)
    }

    private struct State {
        var policy: RefreshPolicy
        /// Bumped on every schedule: a timer from an earlier schedule finds a newer one and does nothing.
        var generation = 0
    }

    private let queue: DispatchQueue
    private let state: Mutex<State>
    /// Runs on `queue`: performs the fetch for `reason` and reports the outcome; `failure` tells
    /// whether this failure is the first of a run (log it).
    private let fetch: @Sendable (_ reason: RefreshPolicy.Reason, _ failureIsFirst: @Sendable () -> Bool) -> Outcome
    /// Runs after each fetch's outcome is recorded (no fetch in flight any more): whoever waited
    /// on a demand answered `.inFlight` is woken after the state says so, never before.
    private let afterFetch: @Sendable () -> Void

    public init(label: String, settings: RefreshPolicy.Settings = .init(), afterFetch: @escaping @Sendable () -> Void = {},
         fetch: @escaping @Sendable (_ reason: RefreshPolicy.Reason, _ failureIsFirst: @Sendable () -> Bool) -> Outcome) {
        queue = DispatchQueue(label: label)
        state = Mutex(State(policy: RefreshPolicy(settings: settings)))
        self.fetch = fetch
        self.afterFetch = afterFetch
    }

    /// Records the start-up fetch's outcome (done by the caller, synchronously) and schedules the next.
    public func started(_ outcome: Outcome) {
        let now = MonotonicTime.now()
        state.withLock { _ = $0.policy.starting(now: now) }
        finish(outcome, now: now)
    }

    /// Something was refused: fetch soon, within the policy's limits. Callable from any thread.
    /// What became of a demand.
    public enum Demand: Sendable, Equatable {
        /// A fetch starts now.
        case started
        /// One is running: its end serves this demand too.
        case inFlight
        /// Too soon after the last one: a fetch is due when the gap ends.
        case deferred
    }

    @discardableResult
    public func demand() -> Demand {
        let now = MonotonicTime.now()
        let (reason, rearm, outcome): (RefreshPolicy.Reason?, (MonotonicTime, Int)?, Demand) = state.withLock { state in
            if state.policy.inFlight != nil { return (nil, nil, .inFlight) }
            let before = state.policy.nextDue
            let reason = state.policy.demanded(now: now)
            if reason != nil { return (reason, nil, .started) }
            guard let due = state.policy.nextDue, due != before else { return (nil, nil, .deferred) }
            // The fetch moved earlier (a refusal inside the gap): a timer for the new time.
            state.generation += 1
            return (nil, (due, state.generation), .deferred)
        }
        if let reason { queue.async { self.run(reason) } }
        if let (due, generation) = rearm { arm(at: due, generation: generation, now: now) }
        return outcome
    }

    private func arm(at due: MonotonicTime, generation: Int, now: MonotonicTime) {
        let delay = max(0, (due - now).nanoseconds)
        queue.asyncAfter(deadline: .now() + .nanoseconds(Int(delay))) { self.timerFired(generation: generation) }
    }

    private func run(_ reason: RefreshPolicy.Reason) {
        let failures = state.withLock { $0.policy.failures }
        let outcome = fetch(reason) { failures == 0 }
        finish(outcome, now: .now())
        afterFetch()
    }

    private func finish(_ outcome: Outcome, now: MonotonicTime) {
        let (due, generation): (MonotonicTime?, Int) = state.withLock { state in
            switch outcome {
            case .success(let next): _ = state.policy.succeeded(now: now, next: next)
            case .failure(let latest): _ = state.policy.failed(now: now, latest: latest)
            }
            state.generation += 1
            return (state.policy.nextDue, state.generation)
        }
        guard let due else { return }
        arm(at: due, generation: generation, now: now)
    }

    private func timerFired(generation: Int) {
        let now = MonotonicTime.now()
        let (reason, early): (RefreshPolicy.Reason?, MonotonicTime?) = state.withLock { state in
            guard state.generation == generation else { return (nil, nil) }
            if let reason = state.policy.timerFired(now: now) { return (reason, nil) }
            // Fired before its time by the monotonic clock (DispatchTime rounds differently):
            // armed again, or the refreshes would stop for good.
            guard state.policy.inFlight == nil, let due = state.policy.nextDue, now < due else { return (nil, nil) }
            return (nil, due)
        }
        if let early { arm(at: early, generation: generation, now: now) }
        guard let reason else { return }
        run(reason)
    }
}
