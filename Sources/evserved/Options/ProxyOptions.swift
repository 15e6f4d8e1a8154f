import ArgumentParser
import EvServer
import EvservedKit

/// The PROXY protocol (versions 1 and 2) on stream listeners behind a load balancer such as HAProxy.
struct ProxyOptions: ParsableArguments {
    @Flag(
        help: ArgumentHelp(
            "Every TCP listener expects a PROXY protocol header (v1 or v2) on each connection; per listener: ?proxy=1.",
            discussion: """
                The client's address in the header replaces the balancer's for the service, --allow/--deny and \
                the per-client limits. Connections from sources outside --proxy-from (default: loopback only), \
                or with a malformed, too long or late header, are closed.
                """
        )
    )
    var proxyProtocol = false

    @Option(
        name: .customLong("proxy-from"),
        help: ArgumentHelp(
            """
            Accept PROXY protocol headers only from this CIDR range (the balancers); repeatable. Default: \
            127.0.0.0/8 and ::1 (a balancer on this host).
            """,
            valueName: "cidr"
        ),
        transform: FlagValue.range(flag: "--proxy-from")
    )
    var proxyFrom: [AddressRange] = []

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Seconds a connection has to send its whole PROXY protocol header.", valueName: "seconds"),
        transform: FlagValue.duration(flag: "--proxy-header-timeout")
    )
    var proxyHeaderTimeout: Double = 3

    /// Sets `proxyProtocol` for `spec`: its own `proxy=` parameter, else `--proxy-protocol` for TCP listeners.
    func apply(to configuration: inout ServerConfiguration, spec: ListenerSpec) {
        let wanted = spec.proxy ?? (proxyProtocol && spec.transport == .stream && !spec.address.isUnix)
        guard wanted else { return }
        configuration.proxyProtocol = ProxyProtocolPolicy(
            trustedSources: proxyFrom.isEmpty ? ProxyProtocolPolicy.loopback : proxyFrom,
            headerTimeout: proxyHeaderTimeout
        )
    }
}
