/// Carries a loop-owned, non-Sendable value across a `Sendable` boundary (a task or a closure
/// handed to `EventLoop.execute`) to code that runs on the same loop. The compiler cannot check
/// the promise; debug builds check it wherever the value is read, as swift-nio's `NIOLoopBound`
/// does. `loop` itself may be used from any thread (to `execute` on it).
public struct LoopBound<Value>: @unchecked Sendable {
    private let _value: Value
    public let loop: EventLoop

    public init(_ value: Value, loop: EventLoop) {
        self._value = value
        self.loop = loop
    }

    public var value: Value {
        loop.assertInLoop()
        return _value
    }
}
