/// Writes to one row go one at a time per loop; the others wait here, not on a connection.
///
/// PostgreSQL runs writes to one row one after another anyway (the row lock). Sent all at once,
/// each waiting write would hold a connection of its own: eight clients updating a locked row held
/// all eight connections of a process, and every other request waited (the row-lock drill). Held
/// back here, a locked row costs one connection per loop, and the waiting writes keep their
/// deadlines. Pure and loop-owned; the key is the caller's (`PostgresQuery.rowKey`).
struct RowWriteQueues {
    /// Key → writes waiting behind the one in flight. A key is present while a write of it runs.
    private var queues: [String: FIFO<PendingQuery>] = [:]
    /// Writes waiting in all queues (including ones whose deadline passed, until they are skipped).
    private(set) var waiting = 0

    /// True: no write of `key` is in flight, so `query` runs now (and `key` is busy until
    /// `finished`). False: it waits behind the one in flight.
    mutating func admit(_ key: String, _ query: PendingQuery) -> Bool {
        guard queues[key] != nil else {
            queues[key] = FIFO()
            return true
        }
        queues[key]!.append(query)
        waiting += 1
        return false
    }

    /// The write of `key` in flight ended: the next still-waiting one runs now (it keeps the key
    /// busy), or the key is free.
    mutating func finished(_ key: String) -> PendingQuery? {
        while let next = queues[key]?.first {
            queues[key]!.removeFirst()
            waiting -= 1
            if !next.isFinished { return next }
        }
        queues[key] = nil
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
