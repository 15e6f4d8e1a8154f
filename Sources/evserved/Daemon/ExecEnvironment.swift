import EvServer

#if canImport(Glibc)
import Glibc
#endif

/// The environment ucspi-tcp's tcpserver (and ucspi-unix's unixserver) give the program of a connection.
enum ExecEnvironment {
    /// `PROTO=TCP` with `TCPREMOTEIP`, `TCPREMOTEPORT`, `TCPLOCALIP`, `TCPLOCALPORT`; over IPv6 `PROTO=TCP6`
    /// with `TCP6REMOTEIP`... (an IPv4 client of a dual-stack `[::]` listener is TCP, with its IPv4 address,
    /// as ucspi-tcp6 does); over a Unix socket `PROTO=UNIX` with `UNIXLOCALPATH` and the peer's credentials
    /// (`SO_PEERCRED`): `UNIXREMOTEPID`, `UNIXREMOTEEUID`, `UNIXREMOTEEGID`.
    static func variables(for connection: DetachedConnection) -> [String: String] {
        if connection.clientAddress.isUnix {
            var variables = ["PROTO": "UNIX", "UNIXLOCALPATH": connection.localAddress?.unixPath ?? ""]
            // struct ucred: pid, uid, gid (three 32-bit integers).
            var credentials: (pid: Int32, uid: UInt32, gid: UInt32) = (0, 0, 0)
            var length = socklen_t(MemoryLayout.size(ofValue: credentials))
            if getsockopt(connection.descriptor, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0 {
                variables["UNIXREMOTEPID"] = "\(credentials.pid)"
                variables["UNIXREMOTEEUID"] = "\(credentials.uid)"
                variables["UNIXREMOTEEGID"] = "\(credentials.gid)"
            }
            return variables
        }
        let remote = ipAndPort(connection.clientAddress)
        let local = connection.localAddress.map(ipAndPort) ?? (ip: "", port: "", isIPv6: remote.isIPv6)
        let proto = remote.isIPv6 ? "TCP6" : "TCP"
        return [
            "PROTO": proto,
            "\(proto)REMOTEIP": remote.ip, "\(proto)REMOTEPORT": remote.port,
            "\(proto)LOCALIP": local.ip, "\(proto)LOCALPORT": local.port,
        ]
    }

    /// The numeric host (an IPv4-mapped IPv6 address as IPv4) and port.
    private static func ipAndPort(_ address: SocketAddress) -> (ip: String, port: String, isIPv6: Bool) {
        var host = address.host ?? ""
        let mapped = "::ffff:"
        if host.lowercased().hasPrefix(mapped), host.contains(".") { host.removeFirst(mapped.count) }
        return (host, address.port.map { "\($0)" } ?? "", host.contains(":"))
    }
}
