import Glibc
import Net
import Synchronization
import Testing

/// One value per thread: the same object on every use from one thread, another on another
/// thread, and each released when its thread exits.
struct ThreadSpecificTests {
    final class Counted {
        static let alive = Atomic<Int>(0)
        init() { Self.alive.add(1, ordering: .relaxed) }
        deinit { Self.alive.subtract(1, ordering: .relaxed) }
    }

    @Test func eachThreadHasItsOwnValueUntilItExits() throws {
        let values = ThreadSpecific { Counted() }
        let mine = values.value
        #expect(values.value === mine)
        let before = Counted.alive.load(ordering: .relaxed)
        final class Seen: @unchecked Sendable { var same = true; var other: ObjectIdentifier? }
        let seen = Seen()
        let mineID = ObjectIdentifier(mine)
        var thread = pthread_t()
        let context = Unmanaged.passRetained(Box(values: values, seen: seen, mine: mineID)).toOpaque()
        #expect(pthread_create(&thread, nil, { context in
            let box = Unmanaged<Box>.fromOpaque(context!).takeRetainedValue()
            let first = box.values.value
            box.seen.same = box.values.value === first
            box.seen.other = ObjectIdentifier(first)
            return nil
        }, context) == 0)
        #expect(pthread_join(thread, nil) == 0)
        #expect(seen.same)
        #expect(seen.other != nil && seen.other != mineID)
        // The other thread's value was released with its thread; this thread's is still here.
        #expect(Counted.alive.load(ordering: .relaxed) == before)
        #expect(values.value === mine)

        final class Box {
            let values: ThreadSpecific<Counted>
            let seen: Seen
            let mine: ObjectIdentifier
            init(values: ThreadSpecific<Counted>, seen: Seen, mine: ObjectIdentifier) {
                self.values = values
                self.seen = seen
                self.mine = mine
            }
        }
    }
}
