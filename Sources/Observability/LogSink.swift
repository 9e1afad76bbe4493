import Dispatch
import Glibc
import Net
import Synchronization

/// Where log lines go: a bounded queue drained by one writer thread that batches them into few
/// `write(2)` calls. A loop never waits on stdout: when the queue is full (stdout slower than the
/// service), the line is dropped and counted, and the writer reports the loss in one WARN line when
/// it catches up. Lines are whole when enqueued, and the writer is the only one writing, so lines
/// never interleave.
public final class LogSink: Sendable {
    /// Bytes of lines waiting, at most: 4 MiB is a few seconds of a busy service's access log,
    /// and bounds what a stalled stdout can cost in memory.
    public static let defaultCapacity = 4 << 20

    /// The lines waiting, newline-terminated, in one buffer: the writer takes the whole buffer in
    /// exchange for its emptied one (two buffers in turn, no allocation per line; an array per
    /// line, then a copy into the batch, were two allocations a request).
    private struct Queue {
        var pending: [UInt8] = []
        var droppedSinceReport = 0
        /// The writer found nothing to write and waits: the next line wakes it.
        var writerWaiting = false
        /// The writer pauses between batches (`gatherMicroseconds`): only `wakeBytes` of
        /// lines wake it early.
        var writerGathering = false
        var shuttingDown = false
    }

    private let queue = Mutex(Queue())
    private let wakeUp = DispatchSemaphore(value: 0)
    private let flushed = DispatchSemaphore(value: 0)
    private let dropped = Atomic<Int>(0)
    private let capacity: Int
    private let gatherMicroseconds: Int
    private let fd: Int32
    /// Renders the "lines were dropped" report in the service's log format.
    private let dropReport: @Sendable (Int) -> [UInt8]

    /// `fd`: 1 (stdout) in production; tests pass a pipe. `capacity` in bytes. `gatherMicroseconds`:
    /// the writer's pause between batches (tests lengthen it to see what ends it early).
    public init(fd: Int32 = 1, capacity: Int = LogSink.defaultCapacity, gatherMicroseconds: Int = LogSink.gatherMicroseconds,
                dropReport: @escaping @Sendable (Int) -> [UInt8]) {
        self.fd = fd
        self.capacity = capacity
        self.gatherMicroseconds = gatherMicroseconds
        self.dropReport = dropReport
        let box = Unmanaged.passRetained(self)
        var thread = pthread_t()
        pthread_create(&thread, nil, { raw in
            let sink = Unmanaged<LogSink>.fromOpaque(raw!).takeRetainedValue()
            nameCurrentThread("todo-log")
            sink.run()
            return nil
        }, box.toOpaque())
        pthread_detach(thread)
    }

    /// Lines dropped because the queue was full, since start (the `logs_dropped_total` metric).
    public var droppedTotal: Int { dropped.load(ordering: .relaxed) }

    /// Enqueues one line (without its newline). Never blocks on I/O.
    public func write(_ line: [UInt8]) {
        line.withUnsafeBytes { write($0) }
    }

    /// Enqueues one line (without its newline), copying it. Never blocks on I/O.
    public func write(_ line: UnsafeRawBufferPointer) {
        var droppedIt = false
        let wake = queue.withLock { state -> Bool in
            guard state.pending.count + line.count + 1 <= capacity, !state.shuttingDown else {
                state.droppedSinceReport += 1
                droppedIt = true
                return false
            }
            state.pending.append(contentsOf: line)
            state.pending.append(0x0A)
            if state.writerWaiting {
                state.writerWaiting = false
                return true
            }
            if state.writerGathering && state.pending.count >= Self.wakeBytes {
                state.writerGathering = false
                return true
            }
            return false
        }
        if droppedIt { dropped.add(1, ordering: .relaxed) }
        if wake { wakeUp.signal() }
    }

    /// Writes everything queued, then returns (graceful shutdown). Later lines are dropped.
    public func flush(timeout: DispatchTime = .now() + 5) {
        let wake = queue.withLock { state -> Bool in
            state.shuttingDown = true
            let waiting = state.writerWaiting || state.writerGathering
            state.writerWaiting = false
            state.writerGathering = false
            return waiting
        }
        if wake { wakeUp.signal() }
        _ = flushed.wait(timeout: timeout)
    }

    private func run() {
        var batch: [UInt8] = []
        while true {
            let (droppedCount, stop) = queue.withLock { state -> (Int, Bool) in
                swap(&batch, &state.pending)
                state.writerGathering = false
                let droppedCount = state.droppedSinceReport
                state.droppedSinceReport = 0
                if batch.isEmpty && droppedCount == 0 && !state.shuttingDown { state.writerWaiting = true }
                return (droppedCount, state.shuttingDown)
            }
            if batch.isEmpty && droppedCount == 0 {
                if stop { flushed.signal(); return }
                wakeUp.wait()
                continue
            }
            if droppedCount > 0 {
                batch.append(contentsOf: dropReport(droppedCount))
                batch.append(0x0A)
            }
            writeAll(batch)
            // Keep the buffer for the next turn unless a burst grew it past a steady batch
            // (at 100,000 lines/s one gather interval is about 200 KiB): resident memory goes
            // back down after a burst.
            if batch.capacity > Self.keptBufferBytes {
                batch = []
            } else {
                batch.removeAll(keepingCapacity: true)
            }
            // Let lines gather before the next batch: a writer that went back to waiting after
            // every line was woken (futex, a context switch onto the loop's core) once per
            // request, 11 % of the service's CPU on GET /todos/{id} (perf). Pausing here, the
            // loops find it not waiting and signal nobody; a line waits at most this long, or
            // until `wakeBytes` of lines are waiting.
            if !stop && gathers() { _ = wakeUp.wait(timeout: .now() + .microseconds(gatherMicroseconds)) }
        }
    }

    /// Marks the writer as pausing unless a batch is already due (or shutdown began): false
    /// means "write again at once".
    private func gathers() -> Bool {
        queue.withLock { state in
            guard state.pending.count < Self.wakeBytes, !state.shuttingDown else { return false }
            state.writerGathering = true
            return true
        }
    }

    /// A buffer larger than this is released after its batch is written (see `run`).
    static let keptBufferBytes = 128 << 10

    /// 5 ms: at 40,000 requests/s about 200 lines (80 KB) per write(2), far from `capacity`.
    public static let gatherMicroseconds = 5_000

    /// Lines that end the writer's pause early. The pause alone let the queue reach 221 KiB
    /// under `DELETE /todos/{id}` (heaptrack): on one core the writer runs only when the
    /// scheduler takes the core from a saturated loop, and two such buffers (the queue and the
    /// batch being written) were 0.44 MB of a 1.1 MB heap peak. 32 KiB is about 100 access lines,
    /// one wake-up (futex) per 100 requests, and fits a pipe's 64 KiB (Fluent Bit's stdin) in
    /// one write.
    static let wakeBytes = 32 << 10

    private func writeAll(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                return  // stdout gone: nothing sensible left to do with log lines
            }
            offset += n
        }
    }
}
