import EvServer
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Tells the service manager how the daemon is doing, by systemd's `sd_notify(3)` protocol: each message is
/// one datagram of newline-separated `VARIABLE=value` lines (`READY=1`, `STATUS=...`, `STOPPING=1`,
/// `MAINPID=...`, `WATCHDOG=1`) sent to the `AF_UNIX` socket named by `NOTIFY_SOCKET` (a path, or with a
/// leading `@` a name in the abstract namespace). Without `NOTIFY_SOCKET` there is no notifier and nothing
/// is sent.
///
/// The watchdog: with `WATCHDOG_USEC` set (and `WATCHDOG_PID` unset or this process, as
/// `sd_watchdog_enabled(3)` reads them) `watchdogInterval` is half of it; the daemon calls `watchdog()` that
/// often. A process that takes over as the main process (`notifyMainPID`) keeps the watchdog too.
///
/// Each message opens a socket, sends, and closes it (the messages are rare), so the notifier holds no
/// descriptor; its one mutable field, the announced main pid, is behind a `Lock`.
public final class SystemdNotifier: Sendable {
    /// The socket's address as `NOTIFY_SOCKET` gives it.
    public let socketName: String
    private let watchdogMicroseconds: UInt64?
    private let watchdogPid: pid_t?
    private let mainPid = Lock<pid_t?>(nil)

    /// The notifier of this process's service manager; `nil` when `NOTIFY_SOCKET` is unset (or empty).
    public static func fromEnvironment() -> SystemdNotifier? {
        func variable(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
        guard let name = variable("NOTIFY_SOCKET"), !name.isEmpty else { return nil }
        return SystemdNotifier(
            socketName: name,
            watchdogMicroseconds: variable("WATCHDOG_USEC").flatMap { UInt64($0) },
            watchdogPid: variable("WATCHDOG_PID").flatMap { pid_t($0) }
        )
    }

    init(socketName: String, watchdogMicroseconds: UInt64?, watchdogPid: pid_t?) {
        self.socketName = socketName
        self.watchdogMicroseconds = watchdogMicroseconds.flatMap { $0 > 0 ? $0 : nil }
        self.watchdogPid = watchdogPid
    }

    /// How often to send `WATCHDOG=1` (half of `WATCHDOG_USEC`), in seconds; `nil` when the service manager
    /// watches another process or no watchdog is set.
    public var watchdogInterval: Double? {
        guard let watchdogMicroseconds else { return nil }
        let owner = mainPid.withLock { $0 } ?? watchdogPid
        guard owner == nil || owner == getpid() else { return nil }
        return Double(watchdogMicroseconds) / 2_000_000
    }

    /// `READY=1`: every listener serves. `status`, if given, is sent with it.
    public func ready(status: String? = nil) { send(["READY=1"] + Self.status(status)) }

    /// `STATUS=...`: one line the service manager shows (`systemctl status`).
    public func status(_ text: String) { send(Self.status(text)) }

    /// `STOPPING=1`: the daemon is shutting down (draining). `status`, if given, is sent with it.
    public func stopping(status: String? = nil) { send(["STOPPING=1"] + Self.status(status)) }

    /// `WATCHDOG=1`: the daemon is alive.
    public func watchdog() { send(["WATCHDOG=1"]) }

    /// `MAINPID=pid` and `READY=1`: sent by a process that takes over the service (a reload starts a new
    /// process, which then serves while the old one exits). The service needs `NotifyAccess=all`, since
    /// the message does not come from the main process systemd knows. From then on the watchdog applies to
    /// this process whatever `WATCHDOG_PID` says.
    public func notifyMainPID(_ pid: pid_t) {
        mainPid.withLock { $0 = pid }
        send(["MAINPID=\(pid)", "READY=1"])
    }

    /// Sends one message of `lines`. - Returns: whether it was sent (the daemon carries on either way).
    @discardableResult
    public func send(_ lines: [String]) -> Bool {
        guard !lines.isEmpty, var address = address() else { return false }
        let descriptor = socket(AF_UNIX, CInt(SOCK_DGRAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        let message = Array(lines.joined(separator: "\n").utf8)
        let length = socklen_t(MemoryLayout<sa_family_t>.size + socketName.utf8.count)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(descriptor, message, message.count, CInt(MSG_NOSIGNAL), $0, length)
            }
        }
        return sent == message.count
    }

    /// `sockaddr_un` of `socketName`: a path, or (leading `@`) an abstract name, which starts with a NUL
    /// byte and is not NUL-terminated (its length is the address length). `nil` when too long.
    private func address() -> sockaddr_un? {
        var bytes = Array(socketName.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        return address
    }

    private static func status(_ text: String?) -> [String] {
        text.map { ["STATUS=\($0)"] } ?? []
    }
}
