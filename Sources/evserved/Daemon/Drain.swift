#if canImport(Glibc)
import Glibc
#endif
import EvServer
import Synchronization

/// The graceful shutdown of every server at once, each on a POSIX thread of its own.
///
/// Not libdispatch: its first use opens descriptors of its own (an eventfd, an epoll), and when it cannot
/// (a daemon at its descriptor limit) it kills the process (SIGILL) instead of draining.
final class Drain: Sendable {
    private let remaining: Atomic<Int>

    /// Starts shutting every server down with `timeout` seconds to drain; a server whose thread cannot be
    /// started is shut down on the calling thread.
    init(_ servers: [any SocketServer], timeout: Double) {
        remaining = Atomic(servers.count)
        for server in servers {
            let work: @Sendable () -> Void = { [self] in
                server.shutdownGracefully(timeout: timeout)
                remaining.subtract(1, ordering: .releasing)
            }
            if !Self.startThread(work) { work() }
        }
    }

    /// Whether every server has shut down.
    var isFinished: Bool { remaining.load(ordering: .acquiring) == 0 }

    /// Runs `body` on a new detached thread; `false` when none could be started.
    static func startThread(_ body: @escaping @Sendable () -> Void) -> Bool {
        let context = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, CInt(PTHREAD_CREATE_DETACHED))
        var thread = pthread_t()
        let result = pthread_create(&thread, &attributes, { context in
            Unmanaged<ThreadBody>.fromOpaque(context!).takeRetainedValue().body()
            return nil
        }, context)
        if result != 0 { Unmanaged<ThreadBody>.fromOpaque(context).release() }
        return result == 0
    }
}

/// What a drain thread runs.
private final class ThreadBody {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}

/// A listener's address for its log lines: the one asked until the servers are bound, then the bound one
/// (with the real port when 0 was asked).
final class ListenerName: Sendable {
    private let address: Lock<SocketAddress>

    init(_ address: SocketAddress) { self.address = Lock(address) }

    var value: SocketAddress {
        get { address.withLock { $0 } }
        set { address.withLock { $0 = newValue } }
    }
}
