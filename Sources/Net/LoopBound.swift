/// Carries a loop-owned, non-Sendable value across a `Sendable` boundary (a task or a closure
/// handed to `EventLoop.execute`) to code that runs on the same loop. The promise is checked where
/// the value is used (`EventLoop.assertInLoop`), not by the compiler.
public struct LoopBound<Value>: @unchecked Sendable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
}
