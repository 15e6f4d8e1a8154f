import EvServer
@testable import EvservedKit
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("systemd: inherited listeners and sd_notify")
struct SystemdTests {
    @Test("systemd://, systemd://NAME and fd://N parse, with a query; other schemes are not inherited")
    func parsesInheritedListeners() throws {
        #expect(try InheritedListener(parsing: "systemd://")?.origin == .systemd(name: nil))
        let named = try InheritedListener(parsing: "systemd://web?service=upper&mode=pool")
        #expect(named?.origin == .systemd(name: "web") && named?.service == .upper && named?.mode == .pool)
        #expect(try InheritedListener(parsing: "fd://3")?.origin == .descriptor(3))
        #expect(try InheritedListener(parsing: "tcp://127.0.0.1:7") == nil)
        for bad in ["fd://", "fd://-1", "fd://x", "systemd://a:b", "systemd://web?service=frob"] {
            #expect(throws: ListenerSpecError.self) { try InheritedListener(parsing: bad) }
        }
    }

    @Test("a message reaches NOTIFY_SOCKET's socket, a path or an abstract name, as newline-separated lines")
    func sendsToTheNotifySocket() throws {
        for name in ["/tmp/evs-notify-\(getpid()).sock", "@evs-notify-\(getpid())"] {
            let receiver = socket(AF_UNIX, CInt(SOCK_DGRAM.rawValue), 0)
            defer { close(receiver) }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            var bytes = Array(name.utf8)
            if name.hasPrefix("@") { bytes[0] = 0 } else { unlink(name) }
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(receiver, $0, socklen_t(MemoryLayout<sa_family_t>.size + bytes.count))
                }
            }
            try #require(bound == 0)
            defer { if !name.hasPrefix("@") { unlink(name) } }
            let notifier = SystemdNotifier(socketName: name, watchdogMicroseconds: nil, watchdogPid: nil)
            notifier.ready(status: "serving 2 listeners")
            var buffer = [UInt8](repeating: 0, count: 256)
            let count = recv(receiver, &buffer, buffer.count, CInt(MSG_DONTWAIT))
            try #require(count > 0)
            #expect(String(decoding: buffer[..<count], as: UTF8.self) == "READY=1\nSTATUS=serving 2 listeners")
        }
    }

    @Test("the watchdog interval is half of WATCHDOG_USEC, only for this process or a pid announced as main")
    func watchdogInterval() {
        #expect(SystemdNotifier(socketName: "/x", watchdogMicroseconds: 4_000_000, watchdogPid: nil)
            .watchdogInterval == 2)
        #expect(SystemdNotifier(socketName: "/x", watchdogMicroseconds: 4_000_000, watchdogPid: getpid())
            .watchdogInterval == 2)
        let other = SystemdNotifier(socketName: "/x", watchdogMicroseconds: 4_000_000, watchdogPid: 1)
        #expect(other.watchdogInterval == nil)
        other.notifyMainPID(getpid())  // taking over: the watchdog is this process's now
        #expect(other.watchdogInterval == 2)
        #expect(SystemdNotifier(socketName: "/x", watchdogMicroseconds: nil, watchdogPid: nil).watchdogInterval == nil)
    }
}
