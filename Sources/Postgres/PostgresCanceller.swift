import CLibPQ
import Glibc
import Net
import Synchronization

/// Cancel requests (libpq's `PQcancel`), sent off the loops: `PQcancel` opens a new connection to
/// the server and waits for it to close, and over a frozen path that wait has no end. One per
/// endpoint (its connections share it), so a frozen path to one endpoint cannot take the cancels
/// of another. At most `maxInFlight` run at once (the endpoint's `DB_POOL_MAX`: one per connection,
/// as a table lock expires the statements of every connection at once); when they are all busy
/// (the path is frozen),
/// `cancel` says no and the caller gives the connection up instead. A thread stuck in `PQcancel`
/// is freed when the path comes back (the server then answers and closes).
///
/// Each request runs on a thread of its own, not on a Dispatch queue: Dispatch runs about as many
/// blocking work items at once as there are CPUs, so cancels stuck on a frozen path held up every
/// other endpoint's cancels behind them (seen in the live tests: slots exhausted, row writes not
/// rescued).
final class PostgresCanceller: Sendable {
    let maxInFlight: Int
    private let inFlight = Atomic<Int>(0)

    init(maxInFlight: Int) {
        self.maxInFlight = max(1, maxInFlight)
    }

    /// One cancel request, as its connection sees it.
    final class Ticket: Sendable {
        /// 0 on its way; -1 `PQcancel` failed; otherwise when it returned (monotonic nanoseconds).
        private let state = Atomic<Int64>(0)

        /// `.delivered`: `PQcancel` returned, the server took the request and signalled the
        /// backend. A statement still unanswered a while after that was not interrupted: the
        /// signal arrived while the backend was reading its next message, and PostgreSQL ignores
        /// a cancel there (`ProcessInterrupts`, postgres.c: "If we are reading a command from
        /// the client, just ignore the cancel request"). A failed request counts as none.
        var delivery: PostgresPipeline.CancelDelivery {
            let value = state.load(ordering: .acquiring)
            if value == 0 { return .pending }
            return value < 0 ? .none : .delivered(MonotonicTime(nanoseconds: value))
        }

        fileprivate func finished(succeeded: Bool) {
            state.store(succeeded ? Swift.max(1, MonotonicTime.now().nanoseconds) : -1, ordering: .releasing)
        }
    }

    /// Starts a cancel request for the statement `pg` is running; nil when none can be sent now.
    /// Called on the connection's loop (`PQgetCancel` only copies what it needs from `pg`).
    func cancel(_ pg: OpaquePointer) -> Ticket? {
        guard inFlight.add(1, ordering: .relaxed).newValue <= maxInFlight else {
            inFlight.subtract(1, ordering: .relaxed)
            return nil
        }
        guard let handle = PQgetCancel(pg) else {
            inFlight.subtract(1, ordering: .relaxed)
            return nil
        }
        let ticket = Ticket()
        let request = Unmanaged.passRetained(Request(handle: handle, canceller: self, ticket: ticket)).toOpaque()
        var thread = pthread_t()
        guard pthread_create(&thread, nil, { raw in
            let request = Unmanaged<Request>.fromOpaque(raw!).takeRetainedValue()
            var message = [CChar](repeating: 0, count: 256)
            // Whether and when it reached the server: a statement still unanswered a grace after
            // that may get another (`PostgresPipeline.check`).
            let succeeded = PQcancel(request.handle, &message, Int32(message.count)) == 1
            PQfreeCancel(request.handle)
            request.ticket.finished(succeeded: succeeded)
            request.canceller.inFlight.subtract(1, ordering: .relaxed)
            return nil
        }, request) == 0 else {
            let failed = Unmanaged<Request>.fromOpaque(request).takeRetainedValue()
            PQfreeCancel(failed.handle)
            inFlight.subtract(1, ordering: .relaxed)
            return nil
        }
        pthread_detach(thread)
        return ticket
    }

    /// A `PGcancel` is self-contained (a copy of the address and key) and safe to use on another thread.
    private final class Request {
        let handle: OpaquePointer
        let canceller: PostgresCanceller
        let ticket: Ticket
        init(handle: OpaquePointer, canceller: PostgresCanceller, ticket: Ticket) {
            self.handle = handle
            self.canceller = canceller
            self.ticket = ticket
        }
    }
}
