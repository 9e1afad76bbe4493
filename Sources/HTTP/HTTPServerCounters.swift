import Net
import Synchronization

/// Process-wide connection counts, shared by the loops. Touched once per connection, not per request.
final class HTTPServerCounters: Sendable {
    private let open = Atomic<Int>(0)
    /// Open connections per client address (only for addresses the per-address cap applies to).
    /// One lock, taken twice per connection: accepts are rare next to requests on keep-alive
    /// connections. Bounded by the connection limit: an address leaves when its count is 0.
    private let perAddress = Mutex<[[UInt8]: Int]>([:])

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

    /// Counts a connection from `address` unless it already has `limit` open.
    func addressOpened(_ address: [UInt8], limit: Int) -> Bool {
        perAddress.withLock { counts in
            let count = counts[address, default: 0]
            guard count < limit else { return false }
            counts[address] = count + 1
            return true
        }
    }

    func addressClosed(_ address: [UInt8]) {
        perAddress.withLock { counts in
            guard let count = counts[address] else { return }
            counts[address] = count > 1 ? count - 1 : nil
        }
    }
}
