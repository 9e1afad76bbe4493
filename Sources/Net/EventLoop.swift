import CLinux
import Glibc
import Synchronization

/// One thread, one epoll instance, and everything registered with it.
///
/// Ownership: all state except `inbox` and `wakePending` belongs to the loop's thread and is touched
/// only there (asserted in debug builds). Other threads hand work over with `execute(_:)` (a locked
/// queue plus an eventfd write that is skipped when a wake-up is already pending, after swift-nio's
/// `_schedule0`). The loop also serves as a Swift `TaskExecutor`, so `Task(executorPreference: loop)`
/// runs an async handler on this thread and every `await` inside it resumes here.
public final class EventLoop: TaskExecutor, @unchecked Sendable, CustomStringConvertible {
    public let index: Int

    private var selector: Selector
    private var registrations: [Registration?] = []
    private var nextGeneration: UInt32 = 1
    private var timers = TimerHeap()
    private var localWork: [Work] = []
    /// Run once at the end of the current iteration, after its events and work (loop thread only):
    /// for whatever is best done once per iteration, such as sending a batch of queries.
    private var iterationEnd: [() -> Void] = []
    /// The storage `runWork` swaps in while it runs the iteration's work and end actions.
    private var runningWork: [Work] = []
    private var runningIterationEnd: [() -> Void] = []
    /// Work handed over by other threads, and whether a wake-up is already pending for it. Both
    /// change only under this lock (as in swift-nio's `_schedule0`): a submitter appends and sets
    /// the flag in one step, and the loop takes the work and clears the flag in one step, so no
    /// submission can see "a wake-up is pending" just before the loop clears the flag without
    /// having taken its work (the lost wake-up: work then waited for unrelated I/O or a timer).
    private let inbox = Mutex<Inbox>(Inbox())
    /// A copy of `Inbox.wakePending` for the loop's lock-free check before it waits.
    private let wakePending = Atomic<Bool>(false)

    private struct Inbox {
        var work: [Work] = []
        var wakePending = false
    }

    /// Tests only: runs on the loop right after it took the handed-over work (where the lost
    /// wake-up happened, when the flag was still cleared after this point).
    var afterTakingInbox: (() -> Void)?
    private let wakeFD: Int32
    /// The loop thread's id (pthread_t), 0 until it runs; set by the thread itself.
    private let threadID = Atomic<UInt>(0)
    /// For `join()`; written by the starting thread only.
    private var joinHandle: pthread_t?
    private let stopRequested = Atomic<Bool>(false)

    /// Monotonic time cached at each wake-up: deadlines computed from it are at most one batch old.
    public private(set) var now = MonotonicTime.now()

    /// One read buffer per loop, reused by every connection of the loop: an idle connection then
    /// holds no read buffer at all (2,000 idle keep-alive connections cost no 64 KiB each). Lent
    /// out only through `withReadBuffer`, on the loop's thread, to one reader at a time.
    private let readBuffer: UnsafeMutableRawBufferPointer
    #if DEBUG
    private var readBufferLent = false
    #endif

    private struct Registration {
        let handler: Selectable
        let generation: UInt32
    }

    private enum Work {
        case closure(@Sendable () -> Void)
        case job(UnownedJob)
    }

    private static let wakeToken = UInt64.max

    public init(index: Int, readBufferSize: Int = 64 * 1024) throws {
        self.index = index
        self.selector = try Selector()
        self.wakeFD = eventfd(0, Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC))
        guard wakeFD >= 0 else { throw SocketError.fromErrno("eventfd") }
        self.readBuffer = .allocate(byteCount: readBufferSize, alignment: 16)
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = EventLoop.wakeToken
        guard epoll_ctl(selector.epollFD, EPOLL_CTL_ADD, wakeFD, &event) == 0 else {
            throw SocketError.fromErrno("epoll_ctl(eventfd)")
        }
    }

    deinit {
        Glibc.close(wakeFD)
        readBuffer.deallocate()
    }

    public var description: String { "EventLoop(\(index))" }

    /// Lends the loop's read buffer to `body`. What `body` reads is valid only inside it: the next
    /// reader overwrites it.
    @inline(__always)
    public func withReadBuffer<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        assertInLoop()
        #if DEBUG
        precondition(!readBufferLent, "the read buffer is already lent out")
        readBufferLent = true
        defer { readBufferLent = false }
        #endif
        return try body(readBuffer)
    }

    // MARK: Threads

    /// True on the loop's own thread.
    public var inLoop: Bool {
        threadID.load(ordering: .relaxed) == pthread_self()
    }

    @inline(__always)
    public func assertInLoop(file: StaticString = #fileID, line: UInt = #line) {
        assert(inLoop, "touched \(self) off its thread", file: file, line: line)
    }

    /// Starts the loop on a new thread.
    public func start() throws {
        let box = Unmanaged.passRetained(self)
        var handle = pthread_t()
        let rc = pthread_create(&handle, nil, { raw in
            let loop = Unmanaged<EventLoop>.fromOpaque(raw!).takeRetainedValue()
            loop.runOnCurrentThread()
            return nil
        }, box.toOpaque())
        guard rc == 0 else {
            box.release()
            throw SocketError.failed(call: "pthread_create", errno: rc)
        }
        joinHandle = handle
    }

    /// Asks the loop to stop after its current batch; `join()` waits for it.
    public func stop() {
        stopRequested.store(true, ordering: .releasing)
        wake()
    }

    public func join() {
        if let joinHandle { pthread_join(joinHandle, nil) }
        joinHandle = nil
    }

    /// The loop whose thread is calling, or nil off the loops. Async handlers use it to reach
    /// per-loop resources (timers, later the loop's database connections).
    public static var current: EventLoop? {
        guard let raw = clinux_current_loop() else { return nil }
        return Unmanaged<EventLoop>.fromOpaque(raw).takeUnretainedValue()
    }

    private func runOnCurrentThread() {
        threadID.store(pthread_self(), ordering: .relaxed)
        nameCurrentThread("todo-loop-\(index)")
        clinux_set_current_loop(Unmanaged.passUnretained(self).toOpaque())
        defer { clinux_set_current_loop(nil) }
        while !stopRequested.load(ordering: .acquiring) {
            runOnce()
        }
        // Run what was handed over last, so that no submitted work is silently dropped.
        runWork()
    }

    /// One iteration: wait in epoll (the only place a loop thread waits), dispatch events, fire due
    /// timers, run handed-over work.
    private func runOnce() {
        var timeout: Int32 = -1
        if !localWork.isEmpty || wakePending.load(ordering: .relaxed) {
            timeout = 0
        } else if let earliest = timers.earliest {
            let remaining = earliest.nanoseconds - MonotonicTime.now().nanoseconds
            // Round up: waking a millisecond early would only spin once more.
            timeout = remaining <= 0 ? 0 : Int32(min((remaining + 999_999) / 1_000_000, 60_000))
        }
        let count = selector.wait(timeoutMilliseconds: timeout)
        for i in 0..<count {
            let (token, events) = selector.event(at: i)
            if token == EventLoop.wakeToken {
                var value: UInt64 = 0
                _ = Glibc.read(wakeFD, &value, 8)
                continue
            }
            let fd = Int(UInt32(truncatingIfNeeded: token))
            let generation = UInt32(truncatingIfNeeded: token >> 32)
            guard fd < registrations.count, let registration = registrations[fd],
                  registration.generation == generation else { continue }
            now = MonotonicTime.now()
            registration.handler.handleEvents(events)
        }
        now = MonotonicTime.now()
        while let timer = timers.popDue(now: now) {
            timer.action()
        }
        runWork()
    }

    private func runWork() {
        if wakePending.load(ordering: .acquiring) {
            let handedOver = inbox.withLock { inbox -> [Work] in
                let taken = inbox.work
                inbox.work.removeAll(keepingCapacity: true)
                inbox.wakePending = false
                wakePending.store(false, ordering: .releasing)
                return taken
            }
            afterTakingInbox?()
            localWork.append(contentsOf: handedOver)
        }
        // Only the work present now: work it adds runs in the next iteration, after I/O, so a task
        // that keeps rescheduling itself cannot starve the sockets.
        // Swapped with a second buffer, not copied: a copy kept the old storage referenced, so
        // `removeAll(keepingCapacity:)` allocated a new one on every iteration that had work.
        swap(&localWork, &runningWork)
        for work in runningWork {
            switch work {
            case .closure(let body): body()
            case .job(let job): job.runSynchronously(on: asUnownedTaskExecutor())
            }
        }
        runningWork.removeAll(keepingCapacity: true)
        while !iterationEnd.isEmpty {
            swap(&iterationEnd, &runningIterationEnd)
            for action in runningIterationEnd { action() }
            runningIterationEnd.removeAll(keepingCapacity: true)
        }
    }

    /// Runs `body` at the end of this iteration, once its events and queued work have run. Loop
    /// thread only.
    public func atIterationEnd(_ body: @escaping () -> Void) {
        assertInLoop()
        iterationEnd.append(body)
    }

    /// Wakes the loop unless a wake-up is already pending (any thread).
    private func wake() {
        if inbox.withLock({ markWakePending(&$0) }) { writeWakeUp() }
    }

    private func writeWakeUp() {
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
    }

    /// Sets the pending flag (under the inbox lock); true when the caller must write the eventfd.
    private func markWakePending(_ inbox: inout Inbox) -> Bool {
        guard !inbox.wakePending else { return false }
        inbox.wakePending = true
        wakePending.store(true, ordering: .releasing)
        return true
    }

    private func submit(_ work: Work) {
        if inLoop {
            localWork.append(work)
        } else if inbox.withLock({ inbox -> Bool in
            inbox.work.append(work)
            return markWakePending(&inbox)
        }) {
            writeWakeUp()
        }
    }

    /// Runs `body` on the loop's thread, soon; callable from any thread.
    public func execute(_ body: @escaping @Sendable () -> Void) {
        submit(.closure(body))
    }

    /// TaskExecutor: jobs of tasks that prefer this loop run on its thread.
    public func enqueue(_ job: consuming ExecutorJob) {
        submit(.job(UnownedJob(job)))
    }

    // MARK: Registrations (loop thread only)

    /// Registers `handler` for readiness on `fd`; returns the registration's generation.
    @discardableResult
    public func register(fd: Int32, interest: Interest, handler: Selectable) throws -> UInt32 {
        assertInLoop()
        let generation = nextGeneration
        nextGeneration &+= 1
        let slot = Int(fd)
        if slot >= registrations.count {
            registrations.append(contentsOf: repeatElement(nil, count: max(slot + 1 - registrations.count, registrations.count)))
        }
        try selector.add(fd: fd, generation: generation, interest: interest)
        registrations[slot] = Registration(handler: handler, generation: generation)
        return generation
    }

    public func reregister(fd: Int32, generation: UInt32, interest: Interest) throws {
        assertInLoop()
        try selector.modify(fd: fd, generation: generation, interest: interest)
    }

    /// Removes the registration; call before closing the fd.
    public func deregister(fd: Int32) {
        assertInLoop()
        selector.remove(fd: fd)
        if Int(fd) < registrations.count { registrations[Int(fd)] = nil }
    }

    // MARK: Timers (loop thread only)

    public func schedule(_ timer: LoopTimer, at deadline: MonotonicTime) {
        assertInLoop()
        timers.schedule(timer, at: deadline)
    }

    public func cancel(_ timer: LoopTimer) {
        assertInLoop()
        timers.cancel(timer)
    }

    /// Suspends the calling task for `span` without blocking the loop. Must be called from a task
    /// running on this loop (`Task(executorPreference: loop)`).
    public func sleep(_ span: TimeSpan) async {
        assertInLoop()
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            let timer = LoopTimer { continuation.resume() }
            self.schedule(timer, at: MonotonicTime.now() + span)
        }
    }
}
