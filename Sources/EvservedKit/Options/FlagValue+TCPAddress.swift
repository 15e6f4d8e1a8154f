import EvServer

extension FlagValue {
    /// A `tcp://HOST:PORT` URL (IPv6 in brackets), for flags that take one TCP address (`--metrics-listen`).
    public static func tcpAddress(_ text: String, flag: String) throws(FlagValueError) -> SocketAddress {
        let spec: ListenerSpec
        do {
            spec = try ListenerSpec(parsing: text)
        } catch {
            throw FlagValueError(flag, text, "\(error.description.prefix(while: { $0 != ":" })): use tcp://HOST:PORT")
        }
        guard text.hasPrefix("tcp://"), spec.transport == .stream, !spec.address.isUnix, spec.service == nil,
            spec.mode == nil
        else {
            throw FlagValueError(flag, text, "not a TCP address: use tcp://HOST:PORT, e.g. tcp://127.0.0.1:9100")
        }
        return spec.address
    }
}
