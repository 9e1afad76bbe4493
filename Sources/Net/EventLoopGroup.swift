/// N event loops on N threads. Created once by the executable; the HTTP server puts one listener on
/// each loop.
public final class EventLoopGroup: Sendable {
    public let loops: [EventLoop]

    public init(count: Int) throws {
        precondition(count > 0)
        loops = try (0..<count).map { try EventLoop(index: $0) }
    }

    public func start() throws {
        for loop in loops { try loop.start() }
    }

    /// Stops every loop and waits for their threads.
    public func shutdown() {
        for loop in loops { loop.stop() }
        for loop in loops { loop.join() }
    }
}
