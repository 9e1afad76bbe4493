import Testing
@testable import Postgres

/// The ring buffer behind the connection's expected results and the pool's waiters, against an
/// array used as a queue: the same elements in the same order through wrap-arounds and growth.
struct FIFOTests {
    @Test func matchesAnArrayQueueThroughWrapsAndGrowth() {
        var fifo = FIFO<Int>()
        var model: [Int] = []
        var state: UInt64 = 42
        var next = 0
        for _ in 0..<100_000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            // Bias towards appends first, then towards removals, so the queue grows and shrinks.
            if state >> 62 != 0 && model.count < 300 || model.isEmpty {
                fifo.append(next)
                model.append(next)
                next += 1
            } else {
                #expect(fifo.removeFirst() == model.removeFirst())
            }
            #expect(fifo.count == model.count)
            #expect(fifo.first == model.first)
        }
        #expect(fifo.drain() == model)
        #expect(fifo.isEmpty)
        fifo.append(7)
        #expect(fifo.removeFirst() == 7)
    }
}
