import EvServer
import Logging

/// A listener's PROXY protocol figures for its SIGUSR1 line, summed over its loops: `proxy-proxied`
/// (headers with a client address), `proxy-local` (LOCAL or UNKNOWN: health checks), `proxy-refused` (all
/// the others), and the refusals by reason (`proxy-untrusted`, `proxy-invalid`, `proxy-timed-out`,
/// `proxy-closed-early`).
struct ProxyFigures {
    var total = ProxyProtocolStatistics()

    init(_ servers: [StreamServer]) {
        for counts in servers.map(\.proxyProtocolStatistics) {
            for outcome in ProxyProtocolStatistics.Outcome.allCases { total[outcome] += counts[outcome] }
        }
    }

    var metadata: Logger.Metadata {
        var figures: Logger.Metadata = ["proxy-refused": "\(total.refused)"]
        for outcome in ProxyProtocolStatistics.Outcome.allCases {
            figures["proxy-\(Self.name(outcome))"] = "\(total[outcome])"
        }
        return figures
    }

    /// `timedOut` as `timed-out`.
    private static func name(_ outcome: ProxyProtocolStatistics.Outcome) -> String {
        "\(outcome)".reduce(into: "") { name, character in
            name += character.isUppercase ? "-\(character.lowercased())" : String(character)
        }
    }
}
