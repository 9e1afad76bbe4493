import Net

/// One writer per thread for business event lines, kept from line to line: a new writer a line
/// (an allocation, zeroed, then freed) was ~600 instructions of a `POST /todos` (callgrind). The
/// access log keeps its own per loop (`HTTPLoopContext`); events are written from handlers,
/// which do not see the loop's context, hence per thread. A writer is taken out while a line is
/// written, so a line written meanwhile on the same thread gets a fresh one; one that held a line
/// longer than `keptBytes` is not kept (memory bound: one writer of at most ~2 × that a thread).
enum LineScratch {
    static let keptBytes = 16 * 1024

    final class Box {
        var writer: JSONWriter?
    }

    private static let boxes = ThreadSpecific { Box() }

    private static func box() -> Box { boxes.value }

    /// The thread's writer, emptied, or a new one.
    static func take() -> JSONWriter {
        let box = box()
        guard var writer = box.writer else { return JSONWriter(capacity: 512) }
        box.writer = nil
        writer.reset()
        return writer
    }

    /// Gives a writer back for the thread's next line.
    static func give(_ writer: JSONWriter) {
        guard writer.count <= keptBytes else { return }
        box().writer = writer
    }
}
