import ArgumentParser
import EvServer
import EvservedKit

/// How long a connection may idle, stall or live, and how long a shutdown may drain.
struct TimeoutOptions: ParsableArguments {
    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Close a connection idle (no byte either way) for this many seconds, or 'none'.",
            discussion: """
                Default: \(Int(Self.blockingIdleTimeout)) s in the blocking modes (sync, thread, pool), where each \
                connection holds a thread or a loop; none in event and async mode.
                """,
            valueName: "seconds"
        ),
        transform: { text throws(FlagValueError) in
            text == "none" ? .unlimited : .seconds(try FlagValue.duration(text, flag: "--idle-timeout"))
        }
    )
    var idleTimeout: IdleTimeout?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Close a connection that sends nothing for this many seconds.", valueName: "seconds"),
        transform: FlagValue.duration(flag: "--read-timeout")
    )
    var readTimeout: Double?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            """
            Close a connection that takes none of its replies for this many seconds (counted once the kernel's \
            send buffer is full: see --send-buffer).
            """,
            valueName: "seconds"
        ),
        transform: FlagValue.duration(flag: "--write-timeout")
    )
    var writeTimeout: Double?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Close any connection after this many seconds.", valueName: "seconds"),
        transform: FlagValue.duration(flag: "--max-lifetime")
    )
    var maxLifetime: Double?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            """
            On SIGTERM/SIGINT, seconds open connections get to finish before they are closed; a second signal \
            exits at once.
            """,
            valueName: "seconds"
        ),
        transform: FlagValue.duration(flag: "--drain-timeout", allowZero: true)
    )
    var drainTimeout: Double = 10

    /// `--idle-timeout` when not given, in the blocking modes: each idle connection there holds a thread
    /// (thread mode: of at most `maximumThreads`), a pool worker or the loop (sync), so a client that never
    /// speaks would hold it forever.
    static let blockingIdleTimeout: Double = 300

    /// `--idle-timeout`: seconds, or `none` (no limit, even in the blocking modes).
    enum IdleTimeout: Equatable {
        case seconds(Double)
        case unlimited
    }

    func apply(to configuration: inout ServerConfiguration, transport: ListenerSpec.Transport) {
        switch idleTimeout {
        case .seconds(let seconds)?: configuration.idleTimeout = seconds
        case .unlimited?: configuration.idleTimeout = nil
        case nil:
            // A blocking mode gives each connection a thread, a pool worker or (sync) the loop: without a
            // limit, clients that never speak would hold them all, silently.
            let blocking = configuration.mode.isBlocking && transport == .stream
            configuration.idleTimeout = blocking ? Self.blockingIdleTimeout : nil
        }
        configuration.readTimeout = readTimeout
        configuration.writeTimeout = writeTimeout
        configuration.maximumLifetime = maxLifetime
    }
}
