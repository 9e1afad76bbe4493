/// A first-in-first-out queue on a ring buffer: O(1) at both ends, no per-element allocation, and
/// no compaction (the moving-head array it replaced shifted its elements every 64 removals, 2 % of
/// a `GET /todos/{id}` with a pipeline that never empties). The capacity is a power of two (16,
/// doubling), so positions wrap with a mask. Loop-owned like its owners.
struct FIFO<Element> {
    private var slots: [Element?] = []
    private var head = 0
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }
    var first: Element? { isEmpty ? nil : slots[head] }

    /// The element `offset` places behind the head.
    subscript(offset: Int) -> Element {
        precondition(offset >= 0 && offset < count, "FIFO offset out of range")
        return slots[(head + offset) & (slots.count - 1)]!
    }

    mutating func append(_ element: Element) {
        if count == slots.count { grow() }
        slots[(head + count) & (slots.count - 1)] = element
        count += 1
    }

    @discardableResult
    mutating func removeFirst() -> Element {
        precondition(count > 0, "removeFirst on an empty FIFO")
        let element = slots[head].take()!
        head = (head + 1) & (slots.count - 1)
        count -= 1
        return element
    }

    /// Empties the queue and returns what it held, in order.
    mutating func drain() -> [Element] {
        var rest: [Element] = []
        rest.reserveCapacity(count)
        while !isEmpty { rest.append(removeFirst()) }
        slots = []
        head = 0
        return rest
    }

    private mutating func grow() {
        var bigger = [Element?](repeating: nil, count: max(16, slots.count * 2))
        for i in 0..<count { bigger[i] = slots[(head + i) & (slots.count - 1)].take() }
        slots = bigger
        head = 0
    }
}
