import CLibPQ
import Dispatch
import Synchronization

/// Cancel requests (libpq's `PQcancel`), sent off the loops: `PQcancel` opens a new connection to
/// the server and waits for it to close, and over a frozen path that wait has no end. One per
/// endpoint (its connections share it), so a frozen path to one endpoint cannot take the cancels
/// of another. At most `maxInFlight` run at once; when they are all busy (the path is frozen),
/// `cancel` says no and the caller gives the connection up instead. A thread stuck in `PQcancel`
/// is freed when the path comes back (the server then answers and closes).
final class PostgresCanceller: Sendable {
    static let maxInFlight = 4
    private static let queue = DispatchQueue(label: "todo-api.postgres.cancel", attributes: .concurrent)
    private let inFlight = Atomic<Int>(0)

    init() {}

    /// Starts a cancel request for the statement `pg` is running; false when none can be sent now.
    /// Called on the connection's loop (`PQgetCancel` only copies what it needs from `pg`).
    func cancel(_ pg: OpaquePointer) -> Bool {
        guard inFlight.add(1, ordering: .relaxed).newValue <= Self.maxInFlight else {
            inFlight.subtract(1, ordering: .relaxed)
            return false
        }
        guard let handle = PQgetCancel(pg) else {
            inFlight.subtract(1, ordering: .relaxed)
            return false
        }
        let request = CancelHandle(handle)
        Self.queue.async { [self] in
            var message = [CChar](repeating: 0, count: 256)
            // Its outcome does not matter: the statement's own answer (57014 or its result) tells.
            _ = PQcancel(request.handle, &message, Int32(message.count))
            PQfreeCancel(request.handle)
            inFlight.subtract(1, ordering: .relaxed)
        }
        return true
    }

    /// A `PGcancel` is self-contained (a copy of the address and key) and safe to use on another thread.
    private struct CancelHandle: @unchecked Sendable {
        let handle: OpaquePointer
        init(_ handle: OpaquePointer) { self.handle = handle }
    }
}
