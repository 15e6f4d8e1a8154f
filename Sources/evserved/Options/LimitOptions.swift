import ArgumentParser
import EvServer
import EvservedKit

/// Who may connect, how many and how fast, and how long a line may be.
struct LimitOptions: ParsableArguments {
    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Most connections open at once per stream listener; at the limit it stops accepting until one closes.",
            valueName: "n"
        ),
        transform: FlagValue.integer(flag: "--max-connections", in: 1...Int.max)
    )
    var maxConnections: Int?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Most connections open at once from one IP address; more are closed at once.",
            valueName: "n"
        ),
        transform: FlagValue.integer(flag: "--max-connections-per-client", in: 1...Int.max)
    )
    var maxConnectionsPerClient: Int?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Most new connections accepted per second per listener; above it accepting pauses.",
            valueName: "per-second"
        ),
        transform: FlagValue.rate(flag: "--max-connection-rate")
    )
    var maxConnectionRate: Double?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Most new connections accepted per second from one IP address; more are closed at once.",
            valueName: "per-second"
        ),
        transform: FlagValue.rate(flag: "--max-connection-rate-per-client")
    )
    var maxConnectionRatePerClient: Double?

    @Option(
        name: .customLong("allow"),
        help: ArgumentHelp(
            "Serve only clients in this CIDR range (10.0.0.0/8, ::1/128); repeatable.",
            valueName: "cidr"
        ),
        transform: FlagValue.range(flag: "--allow")
    )
    var allow: [AddressRange] = []

    @Option(
        name: .customLong("deny"),
        help: ArgumentHelp("Refuse clients in this CIDR range, whatever --allow says; repeatable.", valueName: "cidr"),
        transform: FlagValue.range(flag: "--deny")
    )
    var deny: [AddressRange] = []

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Longest line the line services (upper) accept; a longer one gets an error line and the connection closes.",
            valueName: "bytes"
        ),
        transform: FlagValue.integer(flag: "--max-line", in: 1...Self.longestLine)
    )
    var maxLine: Int = 64 * 1024

    static let longestLine = 16 * 1024 * 1024

    func apply(to configuration: inout ServerConfiguration) {
        configuration.maximumConnections = maxConnections
        configuration.maximumConnectionsPerClient = maxConnectionsPerClient
        configuration.maximumConnectionRate = maxConnectionRate
        configuration.maximumConnectionRatePerClient = maxConnectionRatePerClient
        configuration.allow = allow
        configuration.deny = deny
        configuration.maximumLineLength = maxLine
        configuration.maximumInputBuffer = max(configuration.maximumInputBuffer, maxLine)
    }
}
