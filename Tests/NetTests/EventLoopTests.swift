import Dispatch
import Glibc
import Synchronization
import Testing
@testable import Net

@Suite struct EventLoopTests {
    /// A started loop for `body`, stopped and joined after it.
    private func withRunningLoop(_ body: (EventLoop) throws -> Void) throws {
        let loop = try EventLoop(index: 0)
        try loop.start()
        defer { loop.stop(); loop.join() }
        try body(loop)
    }

    @Test func workHandedOverFromOtherThreadsRunsOnTheLoop() throws {
        try withRunningLoop { loop in
            let ranOnLoop = Atomic<Int>(0)
            for _ in 0..<1000 {
                loop.execute {
                    if loop.inLoop { ranOnLoop.add(1, ordering: .relaxed) }
                }
            }
            for _ in 0..<500 where ranOnLoop.load(ordering: .relaxed) < 1000 { usleep(10_000) }
            #expect(ranOnLoop.load(ordering: .relaxed) == 1000)
        }
    }

    /// An end-of-iteration action may add another (a connection flushed, then a query sent
    /// through it again by a failure handler): it runs in the same iteration, before the loop
    /// waits again (`PostgresConnection` relies on it for every query to go out).
    @Test func actionsAddedAtTheIterationEndRunInThatIteration() throws {
        try withRunningLoop { loop in
            let order = Mutex<[String]>([])
            loop.execute {
                loop.atIterationEnd {
                    order.withLock { $0.append("first") }
                    loop.atIterationEnd {
                        order.withLock { $0.append("added by first") }
                        loop.atIterationEnd { order.withLock { $0.append("added by the added one") } }
                    }
                }
                // A timer far enough away that only a later iteration could run it.
                loop.schedule(LoopTimer { order.withLock { $0.append("timer") } }, at: loop.now + .milliseconds(50))
            }
            for _ in 0..<200 where order.withLock({ $0.count }) < 4 { usleep(5_000) }
            #expect(order.withLock { $0 } == ["first", "added by first", "added by the added one", "timer"])
        }
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
        try withRunningLoop { loop in
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

    /// The lost wake-up (issue "HTTP connections"): work handed over at the moment the loop takes
    /// its inbox must still wake it. The hook forces that interleaving: another thread hands work
    /// over right after the loop took the inbox, and waits until it is queued. With the flag
    /// cleared after this point (the old code), that submitter saw "a wake-up is pending", wrote no
    /// eventfd, and the work waited for unrelated I/O or a timer: here, forever.
    @Test func workHandedOverWhileTheLoopTakesItsInboxIsNotLost() throws {
        let loop = try EventLoop(index: 0)
        let ran = Atomic<Bool>(false)
        let hooked = Atomic<Bool>(false)
        loop.afterTakingInbox = {
            guard !hooked.exchange(true, ordering: .relaxed) else { return }
            let queued = Atomic<Bool>(false)
            DispatchQueue.global().async {
                loop.execute { ran.store(true, ordering: .relaxed) }
                queued.store(true, ordering: .relaxed)
            }
            while !queued.load(ordering: .relaxed) { usleep(100) }
        }
        try loop.start()
        defer { loop.stop(); loop.join() }
        loop.execute {}  // the first hand-over runs the hook
        // No timer and no I/O: only the wake-up can run the work (given 5 s).
        for _ in 0..<500 where !ran.load(ordering: .relaxed) { usleep(10_000) }
        let hookRan = hooked.load(ordering: .relaxed), workRan = ran.load(ordering: .relaxed)
        #expect(hookRan)
        #expect(workRan)
    }
}
