import EvServer

#if canImport(Glibc)
import Glibc
#endif

extension ServingListener {
    /// `--banner`: the `configureConnection` hook that sends `text` to each client that is served, before its
    /// handler (a built-in service, or the program of `--exec`) runs. A banner is at most 1024 bytes and a new
    /// connection's send buffer is empty (and at least 4096 bytes), so one non-blocking `send` takes it whole.
    static func sendBanner(_ text: String) -> @Sendable (CInt, SocketAddress) -> Void {
        let bytes = Array(text.utf8)
        return { descriptor, _ in
            _ = bytes.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, CInt(MSG_NOSIGNAL | MSG_DONTWAIT)) }
        }
    }
}
