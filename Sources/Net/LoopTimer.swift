/// A deadline owned by one loop. The owner re-arms the same object instead of allocating a timer
/// per request: `EventLoop.schedule(_:at:)` moves it in the heap in O(log n).
public final class LoopTimer {
    public internal(set) var deadline: MonotonicTime = .distantFuture
    /// Position in the loop's heap, -1 when not scheduled.
    var heapIndex = -1
    let action: () -> Void

    public init(_ action: @escaping () -> Void) {
        self.action = action
    }

    public var isScheduled: Bool { heapIndex >= 0 }
}

/// Binary min-heap of timers ordered by deadline, each timer knowing its index so that moving or
/// cancelling one is O(log n) without search.
struct TimerHeap {
    private var items: [LoopTimer] = []

    var count: Int { items.count }
    var earliest: MonotonicTime? { items.first?.deadline }

    mutating func schedule(_ timer: LoopTimer, at deadline: MonotonicTime) {
        if timer.heapIndex < 0 {
            timer.deadline = deadline
            timer.heapIndex = items.count
            items.append(timer)
            siftUp(items.count - 1)
        } else {
            let earlier = deadline < timer.deadline
            timer.deadline = deadline
            if earlier { siftUp(timer.heapIndex) } else { siftDown(timer.heapIndex) }
        }
    }

    mutating func cancel(_ timer: LoopTimer) {
        let index = timer.heapIndex
        guard index >= 0 else { return }
        let last = items.count - 1
        if index != last {
            swapAt(index, last)
        }
        items.removeLast()
        timer.heapIndex = -1
        timer.deadline = .distantFuture
        if index < items.count {
            siftDown(index)
            siftUp(index)
        }
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    mutating func popDue(now: MonotonicTime) -> LoopTimer? {
        guard let first = items.first, first.deadline <= now else { return nil }
        cancel(first)
        return first
    }

    private mutating func swapAt(_ i: Int, _ j: Int) {
        items.swapAt(i, j)
        items[i].heapIndex = i
        items[j].heapIndex = j
    }

    private mutating func siftUp(_ start: Int) {
        var i = start
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i].deadline < items[parent].deadline else { return }
            swapAt(i, parent)
            i = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var i = start
        while true {
            let left = 2 * i + 1
            let right = left + 1
            var smallest = i
            if left < items.count, items[left].deadline < items[smallest].deadline { smallest = left }
            if right < items.count, items[right].deadline < items[smallest].deadline { smallest = right }
            if smallest == i { return }
            swapAt(i, smallest)
            i = smallest
        }
    }
}
