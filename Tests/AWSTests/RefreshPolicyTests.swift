@testable import AWS
import Net
import Testing

@Suite struct RefreshPolicyTests {
    let t0 = MonotonicTime(nanoseconds: 1_000_000_000_000)

    @Test func aScheduledFetchRunsWhenDueAndOnlyOnce() {
        var policy = RefreshPolicy()
        #expect(policy.starting(now: t0) == .start)
        #expect(policy.succeeded(now: t0, next: .seconds(3600)) == .refreshed)
        #expect(policy.timerFired(now: t0 + .seconds(3599)) == nil)
        #expect(policy.timerFired(now: t0 + .seconds(3600)) == .schedule)
        // While it runs, neither the timer nor a refusal starts another.
        #expect(policy.timerFired(now: t0 + .seconds(3601)) == nil)
        #expect(policy.demanded(now: t0 + .seconds(3700)) == nil)
    }

    @Test func refusalsFetchAtMostOncePerGap() {
        var policy = RefreshPolicy()
        _ = policy.starting(now: t0)
        _ = policy.succeeded(now: t0, next: .seconds(3600))
        #expect(policy.demanded(now: t0 + .seconds(5)) == nil, "the start-up fetch was 5 s ago")
        #expect(policy.nextDue == t0 + .seconds(10), "due when the gap ends, not at the next refusal after it")
        #expect(policy.timerFired(now: t0 + .seconds(10)) == .rejected)
        _ = policy.succeeded(now: t0 + .seconds(10), next: .seconds(3600))
        #expect(policy.demanded(now: t0 + .seconds(20)) == .rejected)
        _ = policy.succeeded(now: t0 + .seconds(20), next: .seconds(3600))
        #expect(policy.nextDue == t0 + .seconds(3620))
        #expect(policy.demanded(now: t0 + .seconds(21)) == nil)
        #expect(policy.timerFired(now: t0 + .seconds(30)) == .rejected)
        _ = policy.succeeded(now: t0 + .seconds(30), next: .seconds(3600))
        // A fleet of connections refused at once: one fetch.
        #expect(policy.demanded(now: t0 + .seconds(40)) == .rejected)
        #expect(policy.demanded(now: t0 + .seconds(40)) == nil)
        _ = policy.succeeded(now: t0 + .seconds(40), next: .seconds(3600))
        #expect(policy.demanded(now: t0 + .seconds(41)) == nil)
        #expect(policy.demanded(now: t0 + .seconds(49)) == nil)
        #expect(policy.nextDue == t0 + .seconds(50))
    }

    @Test func failuresBackOffAreLoggedOnceAndRecoveryIsReported() {
        var policy = RefreshPolicy()
        _ = policy.starting(now: t0)
        _ = policy.succeeded(now: t0, next: .seconds(60))
        #expect(policy.timerFired(now: t0 + .seconds(60)) == .schedule)
        #expect(policy.failed(now: t0 + .seconds(60)) == true, "the first failure is logged")
        #expect(policy.nextDue == t0 + .seconds(65))
        #expect(policy.timerFired(now: t0 + .seconds(65)) == .retry)
        #expect(policy.failed(now: t0 + .seconds(65)) == false, "later ones are not")
        #expect(policy.nextDue == t0 + .seconds(75))
        for _ in 0..<10 {
            _ = policy.timerFired(now: policy.nextDue!)
            _ = policy.failed(now: policy.nextDue!)
        }
        #expect(policy.failures == 12)
        let due = policy.nextDue!
        #expect(policy.timerFired(now: due) == .retry)
        #expect(policy.failed(now: due) == false)
        #expect(policy.nextDue == due + .seconds(60), "capped")
        _ = policy.timerFired(now: policy.nextDue!)
        #expect(policy.succeeded(now: policy.nextDue!, next: .seconds(60)) == .recovered(failures: 13))
        #expect(policy.failures == 0)
    }

    @Test func aRetryComesNoLaterThanTheOldCredentialsLastMoment() {
        var policy = RefreshPolicy()
        _ = policy.starting(now: t0)
        #expect(policy.failed(now: t0, latest: t0 + .seconds(2)) == true)
        #expect(policy.nextDue == t0 + .seconds(2))
        _ = policy.timerFired(now: t0 + .seconds(2))
        _ = policy.failed(now: t0 + .seconds(2), latest: t0 + .seconds(2) + .milliseconds(100))
        #expect(policy.nextDue == t0 + .seconds(3), "never sooner than a second: no busy loop")
        // Past the old credentials' expiry: the backoff, not a retry every second.
        _ = policy.timerFired(now: t0 + .seconds(3))
        _ = policy.failed(now: t0 + .seconds(3), latest: t0)
        #expect(policy.nextDue == t0 + .seconds(3) + .seconds(20))
    }
}
