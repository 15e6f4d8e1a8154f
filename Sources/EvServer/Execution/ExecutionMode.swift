/// How a server runs its handlers: the one choice that replaces socketserver's mix-in classes.
public enum ExecutionMode: Sendable, Hashable, CustomStringConvertible {
    /// Event-driven handlers (`StreamEventHandler`) called on the loop thread; one thread holds every
    /// connection.
    case event
    /// One blocking handler (`StreamRequestHandler`) at a time, run on the loop thread: socketserver's
    /// default. New clients wait in the kernel backlog meanwhile.
    case sync
    /// A worker thread per open connection for blocking handlers (at most `maximumThreads`). A thread
    /// whose connection ended waits 2 s for the next one before it ends, so a stream of short connections
    /// does not start a thread each: thread-local state a handler leaves may be seen by a later connection.
    case thread
    /// `threads` worker threads for blocking handlers and room for `queueLimit` accepted connections
    /// waiting for one. When the queue is full the server stops accepting until a slot frees, so the
    /// kernel backlog absorbs the burst.
    case pool(threads: Int, queueLimit: Int)
    /// Async handlers (`StreamAsyncHandler`, `DatagramAsyncHandler`) on the loop's task executor: code
    /// that reads like `.sync`'s and scales like `.event`'s (a suspended handler holds no thread).
    case async

    /// True for the modes that run blocking handlers (`StreamRequestHandler`, `DatagramRequestHandler`).
    public var isBlocking: Bool {
        switch self {
        case .event, .async: return false
        case .sync, .thread, .pool: return true
        }
    }

    /// The mode as flags name it (`event`, `pool(threads: 8, queueLimit: 64)`).
    public var description: String {
        switch self {
        case .event: return "event"
        case .async: return "async"
        case .sync: return "sync"
        case .thread: return "thread"
        case .pool(let threads, let queueLimit): return "pool(threads: \(threads), queueLimit: \(queueLimit))"
        }
    }
}
