import ArgumentParser
import EvServer
import EvServerRedis
import EvservedKit
import Logging

/// `--registry`: where `send` and `broadcast` (the `chat` service's rooms) reach the connections of other
/// processes and hosts.
struct RegistryOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            """
            Share the connection registry (chat rooms) with every evserved using this Redis: \
            redis://HOST:PORT[/PREFIX] (PREFIX namespaces the channels; default evserver).
            """,
            discussion: """
                Local delivery never waits for Redis: when it is unreachable (also at start) the daemon serves, \
                logs once per outage how many messages for other daemons were lost, and reconnects.
                """,
            valueName: "url"
        ),
        transform: { text throws(FlagValueError) in
            do {
                return try RedisURL(parsing: text)
            } catch {
                throw FlagValueError("--registry", text, "\(error)")
            }
        }
    )
    var registry: RedisURL?

    /// The backplane every stream listener of this process shares, or `nil` without `--registry`; its
    /// outages and recoveries are logged.
    func makeBackplane(logger: Logger) -> RedisBackplane? {
        guard let registry else { return nil }
        return RedisBackplane(url: registry, logger: logger) { status in
            switch status {
            case .connected(let lost):
                logger.notice(
                    "registry connected", metadata: ["registry": "\(registry)", "lost-during-outage": "\(lost)"]
                )
            case .unreachable(let reason):
                logger.warning(
                    """
                    registry unreachable: local delivery goes on; messages for other processes are lost until it \
                    is back
                    """,
                    metadata: ["registry": "\(registry)", "reason": "\(reason)"]
                )
            }
        }
    }
}

extension RegistryOptions {
    /// Rules across flag groups (called from `Evserved.validate()`): chat needs connections, and its rooms
    /// must not split between worker processes. Exit status 1.
    func validateChat(_ listeners: ListenerOptions) throws {
        let chat = listeners.listen.filter { argument in
            // An inherited socket (systemd://, fd://) serves the daemon's --service (its kind is known later).
            argument.spec.map { listeners.serving($0).service == .chat } ?? (listeners.service == .chat)
        }
        if let datagram = chat.first(where: { $0.spec?.transport == .datagram }) {
            throw FlagValueError("the chat service needs a stream listener (tcp:// or unix://), not \(datagram.text)")
        }
        if !chat.isEmpty, listeners.workers > 1, registry == nil {
            throw FlagValueError(
                """
                --workers \(listeners.workers) would split the chat rooms between the worker processes (each has \
                its own registry): add --registry redis://HOST:PORT, or use --loops instead of --workers
                """
            )
        }
    }
}
