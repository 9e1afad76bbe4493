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
        var writerWaiting = false
        var shuttingDown = false
    }

    private let queue = Mutex(Queue())
    private let wakeUp = DispatchSemaphore(value: 0)
    private let flushed = DispatchSemaphore(value: 0)
    private let dropped = Atomic<Int>(0)
    private let capacity: Int
    private let fd: Int32
    /// Renders the "lines were dropped" report in the service's log format.
    private let dropReport: @Sendable (Int) -> [UInt8]

    /// `fd`: 1 (stdout) in production; tests pass a pipe. `capacity` in bytes.
    public init(fd: Int32 = 1, capacity: Int = LogSink.defaultCapacity, dropReport: @escaping @Sendable (Int) -> [UInt8]) {
        self.fd = fd
        self.capacity = capacity
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
            return false
        }
        if droppedIt { dropped.add(1, ordering: .relaxed) }
        if wake { wakeUp.signal() }
    }

    /// Writes everything queued, then returns (graceful shutdown). Later lines are dropped.
    public func flush(timeout: DispatchTime = .now() + 5) {
        let wake = queue.withLock { state -> Bool in
            state.shuttingDown = true
            let waiting = state.writerWaiting
            state.writerWaiting = false
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
            // loops find it not waiting and signal nobody; a line waits at most this long.
            if !stop { usleep(Self.gatherMicroseconds) }
        }
    }

    /// A buffer larger than this is released after its batch is written (see `run`).
    static let keptBufferBytes = 256 << 10

    /// 5 ms: at 40,000 requests/s about 200 lines (80 KB) per write(2), far from `capacity`.
    static let gatherMicroseconds: UInt32 = 5_000

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
