/// A first-in-first-out queue on an array with a moving head: O(1) amortised at both ends, no
/// per-element allocation. Loop-owned like its owners.
struct FIFO<Element> {
    private var items: [Element] = []
    private var head = 0

    var isEmpty: Bool { head == items.count }
    var count: Int { items.count - head }
    var first: Element? { isEmpty ? nil : items[head] }

    mutating func append(_ element: Element) {
        items.append(element)
    }

    @discardableResult
    mutating func removeFirst() -> Element {
        let element = items[head]
        head += 1
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 64 && head * 2 >= items.count {
            items.removeFirst(head)
            head = 0
        }
        return element
    }

    /// Empties the queue and returns what it held, in order.
    mutating func drain() -> [Element] {
        let rest = Array(items[head...])
        items.removeAll()
        head = 0
        return rest
    }
}
