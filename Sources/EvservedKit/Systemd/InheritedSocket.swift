import EvServer

#if canImport(Glibc)
import Glibc
#endif

/// What an inherited descriptor is, read from the socket itself: its kind (`SO_TYPE`, `SO_DOMAIN`) and
/// address (`getsockname`), so that `systemd://` and `fd://N` listeners need no address in their URL.
public enum InheritedSocket {
    /// The transport and bound address of `descriptor`; refuses (naming `origin`, the `--listen` value)
    /// what evserved cannot serve: a closed descriptor, a file, a stream socket that does not listen (a
    /// connection), a datagram socket not bound, a socket of another kind or family, or a Unix socket
    /// without a path (abstract or unnamed).
    public static func inspect(
        _ descriptor: CInt, origin: String
    ) throws(FlagValueError) -> (transport: ListenerSpec.Transport, address: SocketAddress) {
        func refuse(_ problem: String) -> FlagValueError {
            FlagValueError("--listen '\(origin)': descriptor \(descriptor) \(problem)")
        }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw refuse("is not open: pass an open socket") }
        guard info.st_mode & S_IFMT == S_IFSOCK else { throw refuse("is not a socket: pass a listening socket") }
        let type = option(descriptor, SO_TYPE)
        let family = option(descriptor, SO_DOMAIN)
        guard [AF_INET, AF_INET6, AF_UNIX].contains(family) else {
            throw refuse("is a socket of family \(family): evserved serves IPv4, IPv6 and Unix sockets")
        }
        let transport: ListenerSpec.Transport
        switch type {
        case CInt(SOCK_STREAM.rawValue):
            guard option(descriptor, SO_ACCEPTCONN) == 1 else {
                throw refuse("is a stream socket that is not listening (a connection?): pass a listening socket")
            }
            transport = .stream
        case CInt(SOCK_DGRAM.rawValue):
            transport = .datagram
        default:
            throw refuse("is a socket of type \(type): evserved serves stream and datagram sockets")
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard named == 0 else { throw refuse("has no address (getsockname: \(String(cString: strerror(errno))))") }
        let address = SocketAddress(storage: &storage, length: length)
        if family == AF_UNIX, address.unixPath?.isEmpty != false {
            throw refuse("is an abstract or unnamed Unix socket: evserved serves Unix sockets bound to a path")
        }
        if family != AF_UNIX, address.port == 0 {
            throw refuse("is not bound to a port: pass a bound socket")
        }
        return (transport, address)
    }

    /// An integer socket option at `SOL_SOCKET`; -1 when it cannot be read.
    private static func option(_ descriptor: CInt, _ name: CInt) -> CInt {
        var value: CInt = -1
        var length = socklen_t(MemoryLayout<CInt>.size)
        guard getsockopt(descriptor, SOL_SOCKET, name, &value, &length) == 0 else { return -1 }
        return value
    }
}
