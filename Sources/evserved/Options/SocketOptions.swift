import ArgumentParser
import EvServer
import EvservedKit

#if canImport(Glibc)
import Glibc
#endif

/// How each listening socket is set up.
struct SocketOptions: ParsableArguments {
    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Listen backlog (connections the kernel queues before they are accepted).", valueName: "n"),
        transform: FlagValue.integer(flag: "--backlog", in: 0...Int(Int32.max))
    )
    var backlog: Int = Int(SOMAXCONN)

    @Flag(
        help: """
            Set SO_REUSEPORT: other processes that set it too may bind the same port and take a share of the \
            clients.
            """
    )
    var reusePort = false

    @Flag(inversion: .prefixedNo, help: "Set SO_REUSEADDR on TCP listeners.")
    var reuseAddress = true

    @Flag(help: "IPv6 listeners serve IPv6 only (default: an IPv6 wildcard such as [::] also serves IPv4).")
    var ipv6Only = false

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Largest datagram served; larger ones are dropped whole and logged.", valueName: "bytes"),
        transform: FlagValue.integer(flag: "--max-datagram-size", in: 1...ServerConfiguration.largestDatagramSize)
    )
    var maxDatagramSize: Int = 65_507

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            """
            Kernel send buffer per connection (SO_SNDBUF), \(FlagValue.sendBufferRange.lowerBound) to \
            \(FlagValue.sendBufferRange.upperBound) bytes: bounds what is queued for a client that does not read; \
            default: the system's.
            """,
            valueName: "bytes"
        ),
        transform: FlagValue.integer(flag: "--send-buffer", in: FlagValue.sendBufferRange)
    )
    var sendBuffer: Int?

    func apply(to configuration: inout ServerConfiguration) {
        configuration.backlog = backlog
        configuration.reuseAddress = reuseAddress
        configuration.reusePort = reusePort
        configuration.ipv6Only = ipv6Only
        configuration.maximumDatagramSize = maxDatagramSize
        configuration.sendBufferSize = sendBuffer
    }
}
