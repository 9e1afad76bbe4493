import CLinux
import Glibc

/// Something a loop dispatches readiness to. Implementations live on one loop and are touched only
/// on its thread.
public protocol Selectable: AnyObject {
    func handleEvents(_ events: UInt32)
}

/// Readiness interest, as epoll bits.
public struct Interest: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let read = Interest(rawValue: EPOLLIN.rawValue | EPOLLRDHUP.rawValue)
    public static let write = Interest(rawValue: EPOLLOUT.rawValue)
    /// Edge-triggered (EPOLLET): an event when readiness arrives, not on every wait while it lasts.
    /// The owner must read (or write) until the socket would block, or re-arm with `reregister`
    /// (EPOLL_CTL_MOD polls the socket again and queues an event if it is ready). Why: a
    /// level-triggered descriptor returned by a wait is put back on the ready list, and the next
    /// wait polls it again (tcp_poll) only to drop it: one wasted poll per request served.
    public static let edgeTriggered = Interest(rawValue: EPOLLET.rawValue)
}

/// Event bits handed to `Selectable.handleEvents`.
public enum EventBits {
    public static let readable = EPOLLIN.rawValue
    public static let writable = EPOLLOUT.rawValue
    public static let hangup = EPOLLHUP.rawValue | EPOLLRDHUP.rawValue
    public static let error = EPOLLERR.rawValue
}

/// epoll, level-triggered unless a registration asks for `.edgeTriggered`. The event array is preallocated and doubles when a wait fills it
/// (swift-nio SelectorEpoll). Each registration's user data carries the fd and a generation so that
/// an event queued for an fd that was closed and reused within the same batch is dropped.
struct Selector: ~Copyable {
    let epollFD: Int32
    private var events: UnsafeMutableBufferPointer<epoll_event>

    init() throws {
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epollFD >= 0 else { throw SocketError.fromErrno("epoll_create1") }
        events = .allocate(capacity: 64)
    }

    deinit {
        events.deallocate()
        Glibc.close(epollFD)
    }

    static func token(fd: Int32, generation: UInt32) -> UInt64 {
        UInt64(generation) << 32 | UInt64(UInt32(bitPattern: fd))
    }

    func add(fd: Int32, generation: UInt32, interest: Interest) throws {
        try control(EPOLL_CTL_ADD, fd: fd, generation: generation, interest: interest)
    }

    func modify(fd: Int32, generation: UInt32, interest: Interest) throws {
        try control(EPOLL_CTL_MOD, fd: fd, generation: generation, interest: interest)
    }

    func remove(fd: Int32) {
        var event = epoll_event()
        epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, &event)
    }

    private func control(_ op: Int32, fd: Int32, generation: UInt32, interest: Interest) throws {
        var event = epoll_event()
        event.events = interest.rawValue
        event.data.u64 = Selector.token(fd: fd, generation: generation)
        guard epoll_ctl(epollFD, op, fd, &event) == 0 else { throw SocketError.fromErrno("epoll_ctl") }
    }

    private var lastCount = 0

    /// Waits up to `timeoutMilliseconds` (-1: forever); returns how many events `event(at:)` holds.
    /// Dispatch happens after this returns, so handlers may register and deregister freely.
    mutating func wait(timeoutMilliseconds: Int32) -> Int {
        if lastCount == events.count {
            // The last wait filled the array: there may be more ready descriptors than slots.
            let bigger = UnsafeMutableBufferPointer<epoll_event>.allocate(capacity: events.count * 2)
            events.deallocate()
            events = bigger
        }
        let n = epoll_wait(epollFD, events.baseAddress, Int32(events.count), timeoutMilliseconds)
        lastCount = max(0, Int(n))  // n < 0: EINTR
        return lastCount
    }

    func event(at index: Int) -> (token: UInt64, events: UInt32) {
        (events[index].data.u64, events[index].events)
    }
}
