import Net
import Testing
@testable import HTTP

/// The connection lifecycle without sockets: every deadline, the drain, pipelining back-pressure,
/// driven by a manual clock.
@Suite struct ConnectionLifecycleTests {
    static let timeouts = ConnectionTimeouts(
        header: .seconds(10), body: .seconds(15), bodyMinRate: 500, bodyGrace: .seconds(10),
        write: .seconds(15), sendMinRate: 1024, sendGrace: .seconds(10),
        idle: .seconds(75), linger: .seconds(2), drainGrace: .seconds(1))

    /// A manual clock: seconds since an arbitrary start.
    static func at(_ seconds: Double) -> MonotonicTime { MonotonicTime(nanoseconds: 1_000_000_000_000 + Int64(seconds * 1e9)) }
    static func seconds(_ time: MonotonicTime?) -> Double? {
        time.map { Double($0.nanoseconds - 1_000_000_000_000) / 1e9 }
    }

    func fresh() -> ConnectionLifecycle { ConnectionLifecycle(timeouts: Self.timeouts, now: Self.at(0)) }

    func deadline(_ lifecycle: ConnectionLifecycle) -> (Double, ConnectionLifecycle.Expiry)? {
        lifecycle.deadline().map { (Self.seconds($0.at)!, $0.expiry) }
    }

    /// One keep-alive exchange: request at `start`, answered and flushed at `end`.
    func exchange(_ lifecycle: inout ConnectionLifecycle, start: Double, end: Double, keepOpen: Bool = true) {
        lifecycle.requestBytesArrived(now: Self.at(start))
        lifecycle.headReceived(hasBody: false, now: Self.at(start))
        lifecycle.requestReceived()
        lifecycle.responseQueued(keepOpen: keepOpen, now: Self.at(end))
        lifecycle.outputWritten(100, now: Self.at(end))
        _ = lifecycle.outputFlushed(now: Self.at(end))
    }

    @Test func anIdleConnectionClosesAfterTheIdleTimeoutCountedFromItsLastResponse() {
        var lifecycle = fresh()
        #expect(deadline(lifecycle)! == (75, .closeIdle))
        exchange(&lifecycle, start: 30, end: 30.5)
        #expect(deadline(lifecycle)! == (105.5, .closeIdle))
        #expect(Self.seconds(lifecycle.idleSince) == 30.5)
        #expect(lifecycle.interest(pendingBytes: 0, pendingLimit: 100) == .read)
    }

    @Test func theHeadDeadlineCountsFromTheFirstByteHoweverTheRestTrickles() {
        var lifecycle = fresh()
        lifecycle.requestBytesArrived(now: Self.at(1))
        // Slowloris: a byte every 2 s. Each arrival must not move the deadline.
        for second in stride(from: 3.0, through: 9.0, by: 2) {
            lifecycle.requestBytesArrived(now: Self.at(second))
            #expect(deadline(lifecycle)! == (11, .requestTimeout))
        }
        #expect(lifecycle.idleSince == nil)
    }

    @Test func aBodyMustKeepTheMinimumRateAfterTheGracePeriod() {
        var lifecycle = fresh()
        lifecycle.requestBytesArrived(now: Self.at(0))
        lifecycle.headReceived(hasBody: true, now: Self.at(0))
        // Within the grace period only pauses count: 15 s after the last byte, but no later than
        // the grace (10 s) while nothing has earned more time.
        #expect(deadline(lifecycle)! == (10, .requestTimeout))
        // 1 byte/s: at 9 s it has 9 bytes, which at 500 B/s earn 18 ms: the grace still rules.
        for second in 1...9 { lifecycle.bodyReceived(1, now: Self.at(Double(second))) }
        #expect(deadline(lifecycle)! == (10, .requestTimeout))
        // 10,000 bytes by 12 s earn 20 s: now the pause rule (15 s after the last byte) and the
        // rate rule (20 s) compete; the earlier wins.
        lifecycle.bodyReceived(10_000, now: Self.at(12))
        #expect(deadline(lifecycle)! == (20.018, .requestTimeout))
        lifecycle.bodyReceived(10_000, now: Self.at(13))
        #expect(deadline(lifecycle)! == (28, .requestTimeout))  // pause rule: 13 + 15
    }

    @Test func aBodyPauseLongerThanTheBodyTimeoutExpires() {
        let quick = ConnectionTimeouts(header: .seconds(10), body: .seconds(3), bodyMinRate: 500, bodyGrace: .seconds(10),
                                       write: .seconds(15), sendMinRate: 1024, sendGrace: .seconds(10),
                                       idle: .seconds(75), linger: .seconds(2), drainGrace: .seconds(1))
        var lifecycle = ConnectionLifecycle(timeouts: quick, now: Self.at(0))
        lifecycle.requestBytesArrived(now: Self.at(0))
        lifecycle.headReceived(hasBody: true, now: Self.at(0))
        lifecycle.bodyReceived(100, now: Self.at(1))
        #expect(deadline(lifecycle)! == (4, .requestTimeout))
    }

    @Test func theMinimumRateRuleIsOffAtZero() {
        #expect(ConnectionLifecycle.allowance(0, rate: 0, grace: .seconds(10)) > .seconds(1_000_000))
        #expect(ConnectionLifecycle.allowance(50_000, rate: 500, grace: .seconds(10)) == .seconds(100))
    }

    @Test func noDeadlineRunsWhileAHandlerAnswers() {
        var lifecycle = fresh()
        lifecycle.requestBytesArrived(now: Self.at(0))
        lifecycle.headReceived(hasBody: false, now: Self.at(0))
        lifecycle.requestReceived()
        #expect(lifecycle.deadline() == nil)
        #expect(!lifecycle.isIdle)
    }

    @Test func aResponseMustProgressBetweenStallsAndAtTheMinimumRateAsAWhole() {
        var lifecycle = fresh()
        lifecycle.requestBytesArrived(now: Self.at(0))
        lifecycle.headReceived(hasBody: false, now: Self.at(0))
        lifecycle.requestReceived()
        lifecycle.responseQueued(keepOpen: true, now: Self.at(0))
        lifecycle.outputWritten(8_192, now: Self.at(0))
        // 8 KiB earns 8 s at 1 KiB/s: the grace (10 s) rules, before the stall rule (15 s).
        #expect(deadline(lifecycle)! == (10, .sendTimeout))
        #expect(lifecycle.interest(pendingBytes: 0, pendingLimit: 100) == .write)
        // A reader taking 1 KiB every 9 s never stalls 15 s, but falls under the rate.
        var written = 8_192
        for step in 1...5 {
            written += 1024
            lifecycle.outputWritten(1024, now: Self.at(Double(step * 9)))
        }
        #expect(written == 13_312)
        // 13,312 bytes earn 13 s (less a rounding of the per-byte nanoseconds): long past at 45 s.
        let (at, expiry) = deadline(lifecycle)!
        #expect(abs(at - 13) < 0.001 && expiry == .sendTimeout)
    }

    @Test func aStalledResponseIsCutByTheWriteTimeout() {
        var lifecycle = fresh()
        lifecycle.requestBytesArrived(now: Self.at(0))
        lifecycle.requestReceived()
        lifecycle.responseQueued(keepOpen: true, now: Self.at(0))
        // 1 MB taken at once earns far more than 15 s at the minimum rate: the stall rules.
        lifecycle.outputWritten(1_000_000, now: Self.at(2))
        #expect(deadline(lifecycle)! == (17, .sendTimeout))
        lifecycle.outputWritten(10, now: Self.at(16))
        #expect(deadline(lifecycle)! == (31, .sendTimeout))
    }

    @Test func theLastResponseIsFollowedByALingeringClose() {
        var lifecycle = fresh()
        lifecycle.requestBytesArrived(now: Self.at(0))
        lifecycle.headReceived(hasBody: false, now: Self.at(0))
        lifecycle.requestReceived()
        lifecycle.responseQueued(keepOpen: false, now: Self.at(1))
        #expect(lifecycle.isClosingAfterOutput)
        #expect(lifecycle.interest(pendingBytes: 0, pendingLimit: 100) == .write)
        lifecycle.outputWritten(100, now: Self.at(1))
        let answer1 = lifecycle.outputFlushed(now: Self.at(1))
        #expect(answer1)  // shut the write side
        #expect(lifecycle.isLingering)
        #expect(lifecycle.interest(pendingBytes: 0, pendingLimit: 100) == .read)
        #expect(deadline(lifecycle)! == (3, .lingerOver))
        let answer2 = lifecycle.peerFinishedSending()
        #expect(answer2)  // EOF while lingering: close now
    }

    @Test func aClientThatClosesWhileItsRequestIsHandledHasAbandonedIt() {
        var lifecycle = fresh()
        lifecycle.requestBytesArrived(now: Self.at(0))
        lifecycle.headReceived(hasBody: false, now: Self.at(0))
        lifecycle.requestReceived()
        let closeNow = lifecycle.peerFinishedSending()
        #expect(closeNow)  // the connection logs 499
    }

    @Test func aClientThatClosesWhileReadingItsResponseGetsTheRestThenTheClose() {
        var lifecycle = fresh()
        exchange(&lifecycle, start: 0, end: 0)
        lifecycle.requestBytesArrived(now: Self.at(1))
        lifecycle.requestReceived()
        lifecycle.responseQueued(keepOpen: true, now: Self.at(1))
        let closeNow = lifecycle.peerFinishedSending()
        #expect(!closeNow)
        #expect(lifecycle.interest(pendingBytes: 0, pendingLimit: 100) == .write)
        let shut = lifecycle.outputFlushed(now: Self.at(2))
        #expect(shut)
    }

    @Test func aClientThatClosesWithAPipelinedRequestStillHandledHasAbandonedIt() {
        var lifecycle = fresh()
        lifecycle.requestBytesArrived(now: Self.at(0))
        lifecycle.requestReceived()
        lifecycle.responseQueued(keepOpen: true, now: Self.at(1))
        lifecycle.requestBytesArrived(now: Self.at(1))  // the next one, pipelined
        lifecycle.requestReceived()
        let closeNow = lifecycle.peerFinishedSending()
        #expect(closeNow)
    }

    @Test func aHalfCloseWithNothingOwedClosesAtOnce() {
        var idle = fresh()
        let answer5 = idle.peerFinishedSending()
        #expect(answer5)
        var partial = fresh()
        partial.requestBytesArrived(now: Self.at(0))
        let answer6 = partial.peerFinishedSending()
        #expect(answer6)
    }

    @Test func pipelinedInputStopsBeingReadAtItsLimitWhileAHandlerRuns() {
        var lifecycle = fresh()
        lifecycle.requestBytesArrived(now: Self.at(0))
        lifecycle.headReceived(hasBody: false, now: Self.at(0))
        lifecycle.requestReceived()
        #expect(lifecycle.interest(pendingBytes: 99, pendingLimit: 100) == .read)
        #expect(lifecycle.interest(pendingBytes: 100, pendingLimit: 100) == .none)
        // Once the response is queued, nothing is read until it is written (back-pressure).
        lifecycle.responseQueued(keepOpen: true, now: Self.at(1))
        #expect(lifecycle.interest(pendingBytes: 100, pendingLimit: 100) == .write)
        _ = lifecycle.outputFlushed(now: Self.at(1))
        #expect(lifecycle.interest(pendingBytes: 100, pendingLimit: 100) == .read)
    }

    @Test func drainingGivesAnIdleConnectionAGraceThenClosesIt() {
        var lifecycle = fresh()
        exchange(&lifecycle, start: 5, end: 5)
        lifecycle.drain(now: Self.at(6))
        #expect(lifecycle.isDraining)
        #expect(deadline(lifecycle)! == (7, .closeIdle))
        // A request that arrives within the grace is answered; its response is the last.
        lifecycle.requestBytesArrived(now: Self.at(6.5))
        #expect(deadline(lifecycle)! == (16.5, .requestTimeout))
        lifecycle.headReceived(hasBody: false, now: Self.at(6.5))
        lifecycle.requestReceived()
        #expect(lifecycle.deadline() == nil)
        lifecycle.responseQueued(keepOpen: false, now: Self.at(6.6))  // the connection says close
        let answer7 = lifecycle.outputFlushed(now: Self.at(6.6))
        #expect(answer7)
        #expect(deadline(lifecycle)! == (8.6, .lingerOver))
    }

    @Test func drainingDoesNotShortenABusyConnection() {
        var lifecycle = fresh()
        lifecycle.requestBytesArrived(now: Self.at(0))
        lifecycle.headReceived(hasBody: true, now: Self.at(0))
        lifecycle.drain(now: Self.at(1))
        #expect(deadline(lifecycle)! == (10, .requestTimeout))
        lifecycle.requestReceived()
        #expect(lifecycle.deadline() == nil)
    }

    @Test func aConnectionIdleSinceBeforeTheDrainStillGetsTheWholeGrace() {
        var lifecycle = fresh()  // idle since 0
        lifecycle.drain(now: Self.at(50))
        #expect(deadline(lifecycle)! == (51, .closeIdle))
        // The idle timeout still wins when it is earlier.
        var late = fresh()
        late.drain(now: Self.at(74.5))
        #expect(deadline(late)! == (75, .closeIdle))
    }

    @Test func closedHasNoDeadlineAndNoInterest() {
        var lifecycle = fresh()
        lifecycle.closed()
        #expect(lifecycle.deadline() == nil)
        #expect(lifecycle.interest(pendingBytes: 0, pendingLimit: 1) == .none)
        #expect(lifecycle.idleSince == nil)
    }
}
