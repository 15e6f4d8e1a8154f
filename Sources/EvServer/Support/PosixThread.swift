internal import CLibEv

#if canImport(Glibc)
import Glibc
#endif

/// Starts a named POSIX thread running `body`.
///
/// Loops run on threads of their own (never on a Swift-concurrency thread, since `ev_run` blocks), and
/// blocking handlers run on worker threads; both are started here. The name (at most 15 bytes, Linux's
/// limit) shows in `top -H` and in crash reports.
package enum PosixThread {
    /// Starts a joinable thread; the caller must `join` it.
    /// - Throws: when the system cannot start another thread (`EAGAIN`: a process or memory limit).
    static func spawn(name: String, _ body: @escaping @Sendable () -> Void) throws(SystemError) -> pthread_t {
        try start(name: name, detached: false, body)
    }

    /// Starts a detached thread whose resources are reclaimed by the system when `body` returns.
    package static func spawnDetached(name: String, _ body: @escaping @Sendable () -> Void) throws(SystemError) {
        _ = try start(name: name, detached: true, body)
    }

    /// Starts a detached helper thread that must run (closing a server from one of its own threads): when
    /// the system cannot start one, `body` runs on the calling thread instead.
    static func spawnDetachedOrRunHere(name: String, _ body: @escaping @Sendable () -> Void) {
        do {
            try spawnDetached(name: name, body)
        } catch {
            body()
        }
    }

    static func join(_ thread: pthread_t) {
        pthread_join(thread, nil)
    }

    static var current: pthread_t { pthread_self() }

    private static func start(
        name: String, detached: Bool, _ body: @escaping @Sendable () -> Void
    ) throws(SystemError) -> pthread_t {
        let context = ThreadContext(name: String(name.utf8.prefix(15))!, body: body)
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        if detached { pthread_attr_setdetachstate(&attributes, CInt(PTHREAD_CREATE_DETACHED)) }
        var thread = pthread_t()
        let retained = Unmanaged.passRetained(context)
        let result = pthread_create(&thread, &attributes, threadEntry, retained.toOpaque())
        guard result == 0 else {
            retained.release()
            throw SystemError(operation: "pthread_create(\(name))", errno: result)
        }
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
