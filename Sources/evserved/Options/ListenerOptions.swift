import ArgumentParser
import EvServer
import EvservedKit

#if canImport(Glibc)
import Glibc
#endif

/// What to serve and where: the listeners, their service and mode, and how many loops, processes and
/// threads serve them.
struct ListenerOptions: ParsableArguments {
    @Option(
        name: .customLong("listen"),
        help: ArgumentHelp(
            """
            Where to listen: tcp://HOST:PORT, udp://HOST:PORT (IPv6 as [ADDRESS]), unix:///path or \
            unixgram:///path; or sockets to inherit: systemd:// (every socket systemd passes), systemd://NAME \
            (those named NAME), fd://N (descriptor N); repeatable.
            """,
            discussion: """
                Append ?service=NAME and/or &mode=MODE to give one listener its own service or mode. An \
                inherited socket's kind (TCP, UDP, Unix stream or datagram) and address are read from the \
                socket; its listening line shows them. evserved never removes an inherited socket's file.
                """,
            valueName: "url"
        ),
        transform: { text throws(FlagValueError) in try ListenerArgument(text) }
    )
    var listen: [ListenerArgument] = []

    @Option(
        help: ArgumentHelp("Service for listeners without their own: \(BuiltinService.names).", valueName: "service"),
        transform: FlagValue.choice(flag: "--service")
    )
    var service: BuiltinService = .echo

    @Option(
        help: ArgumentHelp("Execution mode for listeners without their own: \(ModeName.names).", valueName: "mode"),
        transform: FlagValue.choice(flag: "--mode")
    )
    var mode: ModeName = .event

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            """
            Event loops (threads) per TCP/UDP listener, sharing its socket, 1 to \(Self.mostLoops); default: the \
            number of cores in event and async mode, 1 in the others.
            """,
            discussion: """
                Unix listeners always have one, and UDP listeners too unless --reuse-port (loops sharing one \
                datagram socket would all wake for every datagram). Connection limits hold for all loops \
                together; rate limits are split among them; sync mode serves one client per loop at a time; \
                pool mode has --threads per loop. With --reuse-port each loop binds a SO_REUSEPORT socket of \
                its own.
                """,
            valueName: "n"
        ),
        transform: FlagValue.integer(flag: "--loops", in: 1...Self.mostLoops)
    )
    var loops: Int?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            """
            Worker processes serving every listener on sockets the supervisor binds and hands down (a dead one \
            is restarted); 0: serve in this process.
            """,
            valueName: "n"
        ),
        transform: FlagValue.integer(flag: "--workers", in: 0...Self.mostWorkers)
    )
    var workers: Int = 0

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Worker threads in pool mode.", valueName: "n"),
        transform: FlagValue.integer(flag: "--threads", in: 1...Self.mostThreads)
    )
    var threads: Int = 8

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            """
            Accepted connections (or datagrams) that may wait for a worker in pool mode; datagrams beyond it are \
            dropped and counted.
            """,
            valueName: "n"
        ),
        transform: FlagValue.integer(flag: "--queue", in: 0...Self.longestQueue)
    )
    var queue: Int = 64

    /// Bounds of the flags whose range is the daemon's choice rather than the kernel's.
    static let mostLoops = 1024
    static let mostWorkers = 1024
    static let mostThreads = 4096
    static let longestQueue = 1_000_000

    /// Problems no single value shows. Every error here is a `FlagValueError`: exit status 1, like a bad value.
    func validate() throws {
        guard !listen.isEmpty else {
            throw FlagValueError("give at least one --listen URL, for example --listen tcp://127.0.0.1:7000")
        }
        if workers > 0, let unix = listen.first(where: { $0.spec?.address.isUnix == true })?.spec {
            throw FlagValueError(
                """
                --workers cannot share the Unix socket \(unix.address) between processes: use --loops, or a \
                separate daemon for it
                """
            )
        }
    }

    /// The service and execution mode of `spec`: its own, or the daemon's.
    func serving(_ spec: ListenerSpec) -> (service: BuiltinService, mode: ExecutionMode) {
        (spec.service ?? service, (spec.mode ?? mode).executionMode(threads: threads, queue: queue))
    }

    /// Loops spread event-driven work over the cores; blocking modes have their threads for that (and sync
    /// promises one client at a time).
    func loops(for mode: ExecutionMode) -> Int {
        loops ?? (mode.isBlocking ? 1 : Int(sysconf(CInt(_SC_NPROCESSORS_ONLN))))
    }
}

/// One `--listen` value as given, and what it says.
struct ListenerArgument {
    let text: String
    /// The listener to bind; `nil` for sockets to inherit, whose address is known once adopted
    /// (`ResolvedListener`).
    let spec: ListenerSpec?
    /// `systemd://[NAME]` or `fd://N`.
    let inherited: InheritedListener?

    init(_ text: String) throws(FlagValueError) {
        self.text = text
        do {
            inherited = try InheritedListener(parsing: text)
            spec = inherited == nil ? try ListenerSpec(parsing: text) : nil
        } catch {
            throw FlagValueError(error.description)
        }
    }

    /// The `?service=...&mode=...` part of the text, if any.
    var query: String { text.firstIndex(of: "?").map { String(text[$0...]) } ?? "" }
}
