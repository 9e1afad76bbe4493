import Synchronization

/// Process-wide connection count, shared by the loops. Touched once per connection, not per request.
final class HTTPServerCounters: Sendable {
    private let open = Atomic<Int>(0)

    var openConnections: Int { open.load(ordering: .relaxed) }

    /// Counts a new connection unless `limit` is reached.
    func connectionOpened(limit: Int) -> Bool {
        let before = open.add(1, ordering: .relaxed).oldValue
        if before >= limit {
            open.subtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func connectionClosed() {
        open.subtract(1, ordering: .relaxed)
    }
}
