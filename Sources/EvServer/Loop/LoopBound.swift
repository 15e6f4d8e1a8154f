/// A loop-confined value that may be captured by `@Sendable` closures sent to that loop.
///
/// `@unchecked Sendable`: the value is only reachable through `value`, which traps unless called on the
/// loop's thread, so it is never used by two threads.
package struct LoopBound<Value>: @unchecked Sendable {
    package let loop: EventLoop
    private let wrapped: Value

    package init(_ value: Value, loop: EventLoop) {
        self.loop = loop
        wrapped = value
    }

    package var value: Value {
        loop.preconditionInLoop()
        return wrapped
    }
}
