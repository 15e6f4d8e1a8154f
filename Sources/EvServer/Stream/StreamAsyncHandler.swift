/// An async connection handler: straight-line code like socketserver's `handle()`
/// (`while let line = try await connection.readLine() { try await connection.write(line) }`) that holds no
/// thread while it waits.
///
/// It runs on the loop thread of its connection, through the loop's task executor: every `await` on the
/// connection resumes there without a thread hop, so thousands of connections share one thread. Blocking
/// calls (`sleep`, blocking file or socket I/O, long computations) stall every connection of the loop:
/// move them elsewhere (`Task.detached`, a pool) and `await` the result.
///
/// The task starts at once, inside the loop's callback that opened the connection, and runs until it first
/// waits; a read resumes inside the callback that brought its input (as an event handler's code would run
/// there), unless another handler's step is running, in which case it runs right after.
///
/// `AsyncConnection`'s methods are `nonisolated(nonsending)`: they run where their caller runs, with no hop
/// to an executor and back (the hops cost more than the read or write itself). Call them from the
/// handler's task — `handle` and the plain async functions and default actors it calls, all of which run on
/// the loop — not from code isolated to an actor with an executor of its own (the main actor): it traps.
///
/// When `handle` returns, the connection closes once its queued replies are sent. An error it throws is
/// reported once to the `handleError` hook. When the connection closes under it (the client reset it, a
/// timeout, the server's close), its reads and writes throw `ConnectionError` and its task is cancelled.
public protocol StreamAsyncHandler: AnyObject {
    /// Serves the connection; when it returns (or throws) the connection closes once its replies are sent.
    /// A thrown error other than the connection closing is reported to `handleError` once.
    func handle(_ connection: AsyncConnection) async throws

    /// `true`: the handler's task starts when the client first sends (or ends its input), not when the
    /// connection opens, so that an idle connection holds no task (about 0.5 KiB instead of 2.3 KiB
    /// per connection, measured in BENCHMARKS.md). Only for handlers whose first step is a read: one that
    /// greets must leave it `false`. A connection closed before its first input (a timeout, the server's close,
    /// the client's reset) never runs `handle`; an end of input first (the client's, or a drain's deadline)
    /// starts it with nothing to read. Read once, when the connection opens. Default: `false`.
    var startsOnInput: Bool { get }
}

extension StreamAsyncHandler {
    /// Starts at once: the handler may speak first.
    public var startsOnInput: Bool { false }
}
