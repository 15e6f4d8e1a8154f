#if canImport(Glibc)
import Glibc
#endif

/// The sockets systemd's socket activation passed to this process, as `sd_listen_fds_with_names(3)` reads
/// them: `LISTEN_FDS` descriptors from 3 on, named by `LISTEN_FDNAMES` (colon-separated; "unknown" when
/// unnamed), and only when `LISTEN_PID` is this process's pid (else they were meant for another process:
/// none).
public struct SystemdSockets: Sendable {
    /// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
    public static let firstDescriptor: CInt = 3

    /// The passed descriptors with their names, in order.
    public let sockets: [(descriptor: CInt, name: String)]
    /// Why there are none, when there are none: for the error of a `systemd://` with nothing to adopt.
    public let absence: String?

    /// Reads `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES`, then removes them from the environment (so
    /// no child process sees them) and marks every passed descriptor close-on-exec, as `sd_listen_fds` does.
    /// Call once, before any thread is started (it changes the environment).
    public static func take() -> SystemdSockets {
        let found = read()
        for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] { unsetenv(name) }
        for socket in found.sockets {
            let flags = fcntl(socket.descriptor, F_GETFD)
            if flags >= 0 { _ = fcntl(socket.descriptor, F_SETFD, flags | FD_CLOEXEC) }
        }
        return found
    }

    private init(sockets: [(CInt, String)], absence: String?) {
        self.sockets = sockets
        self.absence = absence
    }

    private static func read() -> SystemdSockets {
        guard let pidText = variable("LISTEN_PID") else {
            return SystemdSockets(sockets: [], absence: "LISTEN_PID and LISTEN_FDS are not set")
        }
        guard pid_t(pidText) == getpid() else {
            return SystemdSockets(
                sockets: [],
                absence: "LISTEN_PID is \(pidText), not this process's pid \(getpid()): the sockets are not ours"
            )
        }
        guard let count = variable("LISTEN_FDS").flatMap({ Int($0) }), count > 0, count < 65536 else {
            return SystemdSockets(sockets: [], absence: "LISTEN_FDS is not a number of sockets more than 0")
        }
        let names = variable("LISTEN_FDNAMES")?.split(separator: ":", omittingEmptySubsequences: false)
            .map(String.init) ?? []
        let sockets = (0..<count).map { index in
            (firstDescriptor + CInt(index), index < names.count ? names[index] : "unknown")
        }
        return SystemdSockets(sockets: sockets, absence: nil)
    }

    private static func variable(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}
