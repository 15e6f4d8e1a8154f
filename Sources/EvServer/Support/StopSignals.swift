#if canImport(Glibc)
import Glibc
#endif

/// The signals that end a program serving in the foreground (SIGINT, Ctrl-C: Python's `KeyboardInterrupt`;
/// SIGTERM), taken by one thread with `sigwait`, so no handler runs in signal context. Make it first,
/// before any server starts its threads: they inherit the blocked mask, and no other thread takes the signal.
///
/// ```swift
/// let stop = StopSignals()
/// let server = try TCPServer(host: "127.0.0.1", port: 7000) { Upper() }
/// try server.start()
/// stop.wait()
/// server.shutdownGracefully(timeout: 2)
/// ```
public struct StopSignals: Sendable {
    /// The signals blocked and waited for.
    public let signals: [CInt]

    /// Blocks `signals` in the calling thread, and so in every thread it starts from now on.
    public init(_ signals: [CInt] = [SIGINT, SIGTERM]) {
        self.signals = signals
        var set = Self.set(of: signals)
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Waits until one of the signals arrives (or is pending already); returns it.
    @discardableResult
    public func wait() -> CInt {
        var set = Self.set(of: signals)
        var received: CInt = 0
        while sigwait(&set, &received) != 0 {}
        return received
    }

    private static func set(of signals: [CInt]) -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        return set
    }
}
