import Glibc
import Synchronization
import Testing
@testable import Net

@Suite struct EventLoopTests {
    @Test func workHandedOverFromOtherThreadsRunsOnTheLoop() throws {
        let loop = try EventLoop(index: 0)
        try loop.start()
        defer { loop.stop(); loop.join() }
        let ranOnLoop = Atomic<Int>(0)
        for _ in 0..<1000 {
            loop.execute {
                if loop.inLoop { ranOnLoop.add(1, ordering: .relaxed) }
            }
        }
        for _ in 0..<500 where ranOnLoop.load(ordering: .relaxed) < 1000 { usleep(10_000) }
        #expect(ranOnLoop.load(ordering: .relaxed) == 1000)
    }

    @Test func asyncCodeResumesOnItsLoop() async throws {
        let loop = try EventLoop(index: 0)
        try loop.start()
        defer { loop.stop(); loop.join() }
        let checks = await Task(executorPreference: loop) { () -> [Bool] in
            var results = [loop.inLoop, EventLoop.current === loop]
            await loop.sleep(.milliseconds(20))
            results.append(loop.inLoop)
            return results
        }.value
        #expect(checks == [true, true, true])
    }

    @Test func timersFireInOrderWithoutBlockingTheLoop() throws {
        let loop = try EventLoop(index: 0)
        try loop.start()
        defer { loop.stop(); loop.join() }
        let order = Mutex<[Int]>([])
        loop.execute {
            for (i, delay) in [30, 10, 20].enumerated() {
                let timer = LoopTimer { order.withLock { $0.append(i) } }
                loop.schedule(timer, at: loop.now + .milliseconds(Int64(delay)))
            }
        }
        for _ in 0..<300 where order.withLock({ $0.count }) < 3 { usleep(10_000) }
        #expect(order.withLock { $0 } == [1, 2, 0])
    }
}
