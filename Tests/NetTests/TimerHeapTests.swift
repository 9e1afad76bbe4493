import Testing
@testable import Net

@Suite struct TimerHeapTests {
    @Test func popsInDeadlineOrderAndHonoursMovesAndCancels() {
        var heap = TimerHeap()
        var fired: [Int] = []
        let timers = (0..<50).map { i in LoopTimer { fired.append(i) } }
        // Deadlines in a scrambled order.
        for (i, timer) in timers.enumerated() {
            heap.schedule(timer, at: MonotonicTime(nanoseconds: Int64((i * 37) % 50)))
        }
        heap.cancel(timers[10])
        heap.schedule(timers[20], at: MonotonicTime(nanoseconds: 1_000))  // later
        heap.schedule(timers[30], at: MonotonicTime(nanoseconds: -1))     // earlier
        #expect(!timers[10].isScheduled)
        while let timer = heap.popDue(now: MonotonicTime(nanoseconds: 2_000)) { timer.action() }
        #expect(fired.first == 30)
        #expect(fired.last == 20)
        #expect(!fired.contains(10))
        #expect(fired.count == 49)
        let middle = fired.dropFirst().dropLast().map { Int64(($0 * 37) % 50) }
        #expect(middle == middle.sorted())
    }

    @Test func nothingIsDueBeforeItsDeadline() {
        var heap = TimerHeap()
        let timer = LoopTimer {}
        heap.schedule(timer, at: MonotonicTime(nanoseconds: 100))
        #expect(heap.popDue(now: MonotonicTime(nanoseconds: 99)) == nil)
        #expect(heap.popDue(now: MonotonicTime(nanoseconds: 100)) === timer)
        #expect(heap.count == 0)
    }
}

@Suite struct TimeSpanTests {
    @Test func parsesUnits() {
        #expect(TimeSpan(parsing: "75s") == .seconds(75))
        #expect(TimeSpan(parsing: "500ms") == .milliseconds(500))
        #expect(TimeSpan(parsing: "2m") == .seconds(120))
        #expect(TimeSpan(parsing: "1h") == .seconds(3600))
        #expect(TimeSpan(parsing: "10") == .seconds(10))
    }

    @Test func refusesGarbage() {
        // "3000000h" and "999999999h" overflow 64-bit nanoseconds: refused, not a trap.
        for text in ["", "s", "-5s", "1.5s", "5x", "ms", "99999999999s", " 5s", "3000000h", "999999999h", "999999999m"] {
            #expect(TimeSpan(parsing: text) == nil, "\(text)")
        }
    }
}

@Suite struct CPUCountTests {
    @Test func cgroupV2Quota() {
        #expect(CPUCount.parseCgroupV2("max 100000\n") == nil)
        #expect(CPUCount.parseCgroupV2("50000 100000\n") == 0.5)
        #expect(CPUCount.parseCgroupV2("200000 100000") == 2)
        #expect(CPUCount.parseCgroupV2("garbage") == nil)
    }

    @Test func availableIsPositive() {
        #expect(CPUCount.available() >= 1)
    }
}
