import EvServer

#if canImport(Glibc)
import Glibc
#endif

extension ServingListener {
    /// `--banner`: the `configureConnection` hook that sends `text` as a line (CRLF added unless it ends with a
    /// line end) to each client that is served, before its handler (a built-in service, or the program of
    /// `--exec`) runs. A banner is at most 1024 bytes and a new
    /// connection's send buffer is empty (and at least 4096 bytes), so one non-blocking `send` takes it whole.
    static func sendBanner(_ text: String) -> @Sendable (CInt, SocketAddress) -> Void {
        let line = Array(text.utf8)  // utf8: a final "\r\n" is one Character, and hasSuffix("\n") misses it
        let bytes = line.last == UInt8(ascii: "\n") ? line : line + Array("\r\n".utf8)
        return { descriptor, _ in
            _ = bytes.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, CInt(MSG_NOSIGNAL | MSG_DONTWAIT)) }
        }
    }
}
