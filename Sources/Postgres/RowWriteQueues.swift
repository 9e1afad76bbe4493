/// Writes to one row go one at a time per loop; the others wait here, not on a connection.
///
/// PostgreSQL runs writes to one row one after another anyway (the row lock). Sent all at once,
/// each waiting write would hold a connection of its own: eight clients updating a locked row held
/// all eight connections of a process, and every other request waited (the row-lock drill). Held
/// back here, a locked row costs one connection per loop, and the waiting writes keep their
/// deadlines. Pure and loop-owned; the key is the caller's (`PostgresQuery.rowKey`).
struct RowWriteQueues {
    /// Key → writes waiting behind the one in flight. A key is present while a write of it runs.
    private var queues: [RowKey: FIFO<PendingQuery>] = [:]
    /// Writes waiting in all queues (including ones whose deadline passed, until they are skipped).
    private(set) var waiting = 0

    /// True: no write of `key` is in flight, so `query` runs now (and `key` is busy until
    /// `finished`). False: it waits behind the one in flight.
    mutating func admit(_ key: RowKey, _ query: PendingQuery) -> Bool {
        // Found once; a busy key's queue is then changed through its index, without hashing again.
        guard let index = queues.index(forKey: key) else {
            queues[key] = FIFO()
            return true
        }
        queues.values[index].append(query)
        waiting += 1
        return false
    }

    /// The write of `key` in flight ended: the next still-waiting one runs now (it keeps the key
    /// busy), or the key is free.
    mutating func finished(_ key: RowKey) -> PendingQuery? {
        guard let index = queues.index(forKey: key) else { return nil }
        while let next = queues.values[index].first {
            queues.values[index].removeFirst()
            waiting -= 1
            if !next.isFinished { return next }
        }
        queues.remove(at: index)
        return nil
    }

    /// Every waiting write, removed (shutdown).
    mutating func removeAll() -> [PendingQuery] {
        var all: [PendingQuery] = []
        for key in Array(queues.keys) { all += queues[key]!.drain() }
        queues = [:]
        waiting = 0
        return all
    }
}

/// The row a write changes (`PostgresQuery.rowKey`), with its hash computed once: the queues look
/// a key up three times per write (admitted, finished, freed), and hashing the 36-byte id each time
/// was ~1,100 instructions of a `PUT` (callgrind). The hash is the standard library's, seeded per
/// process, so a client cannot choose ids that collide.
public struct RowKey: Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    public let text: String
    private let hash: Int

    public init(_ text: String) {
        self.text = text
        hash = text.hashValue
    }

    public init(stringLiteral value: String) { self.init(value) }

    public static func == (a: RowKey, b: RowKey) -> Bool { a.hash == b.hash && a.text == b.text }

    public func hash(into hasher: inout Hasher) { hasher.combine(hash) }

    public var description: String { text }
}

extension RowKey {
    /// The order in which a commit group takes its rows' locks: the key's bytes, compared with
    /// ASCII letters folded to lower case (a todo id is a UUID, and `A…` and `a…` name one row).
    /// Any fixed total order prevents deadlocks between groups, provided every process uses it.
    static func precedesInLockOrder(_ a: RowKey, _ b: RowKey) -> Bool {
        var left = a.text
        var right = b.text
        return left.withUTF8 { x in
            right.withUTF8 { y in
                for i in 0..<min(x.count, y.count) {
                    let p = x[i] &- 65 < 26 ? x[i] | 0x20 : x[i], q = y[i] &- 65 < 26 ? y[i] | 0x20 : y[i]
                    if p != q { return p < q }
                }
                return x.count < y.count
            }
        }
    }

    /// Sorts row writes in lock order; stable (writes that name one row keep their order), and an
    /// insertion sort: a group holds at most `PostgresConnection.maxCommitGroup`.
    static func sortInLockOrder(_ writes: inout [PendingQuery]) {
        guard writes.count > 1 else { return }
        for i in 1..<writes.count {
            let write = writes[i]
            guard let key = write.query.rowKey else { continue }
            var j = i
            while j > 0, let before = writes[j - 1].query.rowKey, precedesInLockOrder(key, before) {
                writes[j] = writes[j - 1]
                j -= 1
            }
            writes[j] = write
        }
    }
}
