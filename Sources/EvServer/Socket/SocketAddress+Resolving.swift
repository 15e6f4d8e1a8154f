#if canImport(Glibc)
import Glibc
#endif

extension SocketAddress {
    /// An IP address and port where `host` may also be a name (`db.internal`, `localhost`), resolved now
    /// through the system's resolver (`/etc/hosts`, DNS): the first address it gives. Numeric hosts are
    /// taken as they are, without a lookup. `StreamServer(host:port:)` and `DatagramServer(host:port:)` use
    /// it, so a server binds a named host as socketserver does.
    /// - Throws: `.invalidAddress` naming the host when it does not resolve.
    public init(resolving host: String, port: Int) throws(ServerError) {
        if host != "localhost", let numeric = try? SocketAddress(host: host, port: port) {
            self = numeric
            return
        }
        guard (0...65535).contains(port) else {
            throw ServerError(.invalidAddress, "port \(port) is out of range: use 0 to 65535 (0 picks a free port)")
        }
        var hints = addrinfo()
        hints.ai_flags = AI_NUMERICSERV
        hints.ai_socktype = 0  // any: the address is what matters
        var results: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &results)
        defer { if let results { freeaddrinfo(results) } }
        guard status == 0, let first = results, let address = first.pointee.ai_addr else {
            let reason = status == 0 ? "no address" : String(cString: gai_strerror(status))
            throw ServerError(
                .invalidAddress,
                """
                cannot resolve host '\(host)': \(reason) (check the name, /etc/hosts and DNS, or give a numeric \
                address)
                """
            )
        }
        var storage = sockaddr_storage()
        let resolved = UnsafeRawBufferPointer(start: address, count: Int(first.pointee.ai_addrlen))
        withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: resolved) }
        self.init(storage: &storage, length: first.pointee.ai_addrlen)
    }
}
