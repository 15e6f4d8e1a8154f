import EvServer
import Logging

/// A listener's PROXY protocol figures for its SIGUSR1 line, summed over its loops: `proxy-proxied`
/// (headers with a client address), `proxy-local` (LOCAL or UNKNOWN: health checks), `proxy-refused`
/// (untrusted source, malformed or too long header, late header, closed before it ended).
struct ProxyFigures {
    let total: ProxyProtocolStatistics

    init(_ servers: [StreamServer]) {
        var total = ProxyProtocolStatistics()
        for counts in servers.map(\.proxyProtocolStatistics) {
            total.proxied += counts.proxied
            total.local += counts.local
            total.untrusted += counts.untrusted
            total.invalid += counts.invalid
            total.timedOut += counts.timedOut
            total.closedEarly += counts.closedEarly
        }
        self.total = total
    }

    var metadata: Logger.Metadata {
        [
            "proxy-proxied": "\(total.proxied)", "proxy-local": "\(total.local)", "proxy-refused": "\(total.refused)",
            "proxy-untrusted": "\(total.untrusted)", "proxy-invalid": "\(total.invalid)",
            "proxy-timed-out": "\(total.timedOut)",
        ]
    }
}
