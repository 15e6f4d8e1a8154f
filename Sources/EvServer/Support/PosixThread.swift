internal import CLibEv

#if canImport(Glibc)
import Glibc
#endif

/// Starts a named POSIX thread running `body`.
///
/// Loops run on threads of their own (never on a Swift-concurrency thread, since `ev_run` blocks), and
/// blocking handlers run on worker threads; both are started here. The name (at most 15 bytes, Linux's
/// limit) shows in `top -H` and in crash reports.
enum PosixThread {
    /// Starts a joinable thread; the caller must `join` it.
    static func spawn(name: String, _ body: @escaping @Sendable () -> Void) -> pthread_t {
        start(name: name, detached: false, body)
    }

    /// Starts a detached thread whose resources are reclaimed by the system when `body` returns.
    static func spawnDetached(name: String, _ body: @escaping @Sendable () -> Void) {
        _ = start(name: name, detached: true, body)
    }

    static func join(_ thread: pthread_t) {
        pthread_join(thread, nil)
    }

    static var current: pthread_t { pthread_self() }

    private static func start(name: String, detached: Bool, _ body: @escaping @Sendable () -> Void) -> pthread_t {
        let context = ThreadContext(name: String(name.utf8.prefix(15))!, body: body)
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        if detached { pthread_attr_setdetachstate(&attributes, CInt(PTHREAD_CREATE_DETACHED)) }
        var thread = pthread_t()
        let result = pthread_create(&thread, &attributes, threadEntry, Unmanaged.passRetained(context).toOpaque())
        precondition(result == 0, "cannot start thread \(name): \(String(cString: strerror(result)))")
        return thread
    }
}

private final class ThreadContext: Sendable {
    let name: String
    let body: @Sendable () -> Void
    init(name: String, body: @escaping @Sendable () -> Void) {
        self.name = name
        self.body = body
    }
}

/// The C entry point of every thread: takes back the retained context passed to `pthread_create`.
private func threadEntry(_ argument: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    let context = Unmanaged<ThreadContext>.fromOpaque(argument!).takeRetainedValue()
    _ = CLibEv_pthread_setname_np(pthread_self(), context.name)
    context.body()
    return nil
}
