#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A server's own socket: bound (and listening, for a stream socket), non-blocking, closed once.
///
/// A Unix socket file is removed at close only while it is still the file this socket bound (same device
/// and inode): a file someone else put at the path since, or another server's socket, is left alone.
///
/// The loop thread accepts or receives on it and worker threads send datagram replies on it, concurrently
/// (the kernel serialises those calls); `close()` runs once no thread uses it any more, on the thread that
/// closes the server. `@unchecked Sendable` for that reason: the descriptor changes only in `close()`.
package final class ServerSocket: @unchecked Sendable {
    let socket: Socket
    /// The address as configured (port 0 stays 0).
    let address: SocketAddress
    /// The address it is bound to, with the real port when port 0 was asked.
    let localAddress: SocketAddress
    /// The Unix socket file this socket made, if it owns one.
    private let boundFile: (device: UInt, inode: UInt)?
    /// Set once another process serving this socket has taken its Unix socket file over (`handOverFile`).
    private let fileHandedOver = Atomic<Bool>(false)

    private init(socket: Socket, address: SocketAddress, localAddress: SocketAddress, boundFile: (UInt, UInt)?) {
        self.socket = socket
        number = socket.descriptor
        self.address = address
        self.localAddress = localAddress
        self.boundFile = boundFile
    }

    var descriptor: CInt { socket.descriptor }
    /// The descriptor's number as opened, readable from any thread (`SocketServer.descriptor`).
    let number: CInt
    var isOpen: Bool { socket.isOpen }

    /// Opens, binds and (for `SOCK_STREAM`) listens on `configuration.address`. On any failure nothing is
    /// left open and no file is left behind.
    /// `configure` (`ServerHooks.configureListeningSocket`) runs after the library's options, before `bind`.
    static func open(
        _ configuration: ServerConfiguration, type: __socket_type, configure: ((CInt) throws -> Void)? = nil
    ) throws(ServerError) -> ServerSocket {
        if let descriptor = configuration.boundSocket { return try adopt(descriptor, configuration, type: type) }
        let address = configuration.address
        let socket: Socket
        do {
            socket = try Socket(family: address.family, type: CInt(type.rawValue))
        } catch {
            throw ServerError.cannotListen(on: address, error)
        }
        var boundFile: (UInt, UInt)?
        do {
            try setOptions(of: socket, configuration, type: type)
            try configureByHook(socket, configure, address: address)
            if let path = address.unixPath { try removeStaleSocketFile(at: path, address: address, type: type) }
            try socket.bind(to: address)
            if let path = address.unixPath { boundFile = fileIdentity(at: path) }
            if type == SOCK_STREAM { try socket.listen(backlog: CInt(clamping: configuration.backlog)) }
            let local = address.isUnix ? address : try socket.localAddress()
            return ServerSocket(socket: socket, address: address, localAddress: local, boundFile: boundFile)
        } catch {
            socket.close()
            if let path = address.unixPath, let boundFile, fileIdentity(at: path).map({ $0 == boundFile }) == true {
                unlink(path)
            }
            if let error = error as? SystemError { throw ServerError.cannotListen(on: address, error) }
            guard let error = error as? ServerError else { preconditionFailure("unexpected error: \(error)") }
            throw error
        }
    }

    /// Takes `descriptor`, a socket bound by someone else (`configuration.boundSocket`): checks that it is a
    /// socket of `type`, listens on a stream socket that does not yet, makes it non-blocking and
    /// close-on-exec. It owns no file (whoever bound a Unix path removes it) unless
    /// `configuration.ownsBoundSocketFile`. Closed on failure too.
    private static func adopt(
        _ descriptor: CInt, _ configuration: ServerConfiguration, type: __socket_type
    ) throws(ServerError) -> ServerSocket {
        let address = configuration.address
        let socket = Socket(descriptor: descriptor)
        do {
            guard try socket.option(level: SOL_SOCKET, name: SO_TYPE, what: "SO_TYPE") == CInt(type.rawValue) else {
                let kind = type == SOCK_STREAM ? "stream" : "datagram"
                throw ServerError(
                    .invalidConfiguration,
                    """
                    descriptor \(descriptor) given for \(address) is not a \(kind) socket: pass the socket \
                    bound for it
                    """
                )
            }
            let listening = try socket.option(level: SOL_SOCKET, name: SO_ACCEPTCONN, what: "SO_ACCEPTCONN") != 0
            if type == SOCK_STREAM && !listening { try socket.listen(backlog: CInt(clamping: configuration.backlog)) }
            try socket.setBlocking(false)
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
            let local = try socket.localAddress()
            let ownFile = configuration.ownsBoundSocketFile ? address.unixPath.flatMap(fileIdentity(at:)) : nil
            return ServerSocket(socket: socket, address: address, localAddress: local, boundFile: ownFile)
        } catch {
            socket.close()
            if let error = error as? SystemError { throw ServerError.cannotListen(on: address, error) }
            guard let error = error as? ServerError else { preconditionFailure("unexpected error: \(error)") }
            throw error
        }
    }

    /// Binds (and listens on, for a stream) the socket `configuration` describes and hands its descriptor
    /// over, close-on-exec, for another process to serve (`boundSocket`): a supervisor's listeners, which
    /// its workers inherit. Its Unix socket file, if any, is the caller's to remove.
    package static func bindForHandOver(
        _ configuration: ServerConfiguration, datagram: Bool
    ) throws(ServerError) -> (descriptor: CInt, localAddress: SocketAddress) {
        let bound = try open(configuration, type: datagram ? SOCK_DGRAM : SOCK_STREAM)
        return (bound.socket.takeDescriptor(), bound.localAddress)
    }

    /// The two kinds of server socket.
    enum Kind: String {
        case stream = "Stream"
        case datagram = "Datagram"
    }

    /// Checks the configuration and that the handler's style fits its mode, then returns `shared` when
    /// there is one (a group member's duplicate), else a new socket as `open` makes it.
    static func open(
        _ configuration: ServerConfiguration, for kind: Kind, handler: HandlerStyle, unless shared: ServerSocket?,
        configure: ((CInt) throws -> Void)?
    ) throws(ServerError) -> ServerSocket {
        try configuration.validate()
        if kind == .datagram, configuration.proxyProtocol != nil {
            throw ServerError(.invalidConfiguration, "proxyProtocol is for stream servers: datagrams carry no header")
        }
        try handler.check(configuration.mode, transport: kind.rawValue)
        if let shared { return shared }
        return try open(configuration, type: kind == .stream ? SOCK_STREAM : SOCK_DGRAM, configure: configure)
    }

    /// Another descriptor for the same socket, for one more loop of a server group: it serves the same
    /// queue of connections (or datagrams), no other process can join it, and it owns no file (the first
    /// member's socket removes it).
    func duplicate() throws(ServerError) -> ServerSocket {
        let copy = fcntl(socket.descriptor, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else {
            throw ServerError.cannotListen(on: address, SystemError(operation: "fcntl(F_DUPFD_CLOEXEC)", errno: errno))
        }
        return ServerSocket(
            socket: Socket(descriptor: copy), address: address, localAddress: localAddress, boundFile: nil
        )
    }

    /// Closes the descriptor and removes the Unix socket file if it is still ours. Idempotent.
    func close() {
        guard socket.isOpen else { return }
        socket.close()
        guard !fileHandedOver.load(ordering: .acquiring) else { return }
        if let path = address.unixPath, let boundFile, let now = ServerSocket.fileIdentity(at: path), now == boundFile {
            unlink(path)
        }
    }

    /// From now on `close()` leaves the Unix socket file in place: another process that serves this same
    /// socket (it inherited the descriptor) has taken it over.
    func handOverFile() {
        fileHandedOver.store(true, ordering: .releasing)
    }

    private static func setOptions(
        of socket: Socket, _ configuration: ServerConfiguration, type: __socket_type
    ) throws {
        let address = configuration.address
        if !address.isUnix {
            // Not on UDP: there SO_REUSEADDR lets a second server bind the same port and steal datagrams.
            if configuration.reuseAddress && type == SOCK_STREAM {
                try socket.setOption(level: SOL_SOCKET, name: SO_REUSEADDR, value: 1, what: "SO_REUSEADDR")
            }
            if configuration.reusePort {
                try socket.setOption(level: SOL_SOCKET, name: SO_REUSEPORT, value: 1, what: "SO_REUSEPORT")
            }
        }
        if address.family == AF_INET6 {
            // Set either way, so the choice does not depend on the net.ipv6.bindv6only sysctl.
            try socket.setOption(
                level: CInt(IPPROTO_IPV6), name: IPV6_V6ONLY, value: configuration.ipv6Only ? 1 : 0, what: "IPV6_V6ONLY"
            )
        }
    }

    /// Runs `ServerHooks.configureListeningSocket`; its error becomes an `.invalidConfiguration` naming it.
    private static func configureByHook(
        _ socket: Socket, _ configure: ((CInt) throws -> Void)?, address: SocketAddress
    ) throws(ServerError) {
        do {
            try configure?(socket.descriptor)
        } catch {
            throw ServerError(.invalidConfiguration, "configureListeningSocket failed for \(address): \(error)")
        }
    }

    /// The device and inode of the file at `path`, if there is one.
    private static func fileIdentity(at path: String) -> (UInt, UInt)? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return (UInt(info.st_dev), UInt(info.st_ino))
    }

    /// Removes a Unix socket file left by a server that died, but only when no one listens on it: a live
    /// server's file is reported as in use, and a file that is not a socket is never touched.
    private static func removeStaleSocketFile(at path: String, address: SocketAddress, type: __socket_type) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }  // nothing there
        guard (info.st_mode & S_IFMT) == S_IFSOCK else {
            throw ServerError(
                .addressInUse,
                "cannot listen on \(path): the file exists and is not a socket (remove it or choose another path)"
            )
        }
        let probe = try Socket(family: AF_UNIX, type: CInt(type.rawValue))
        defer { probe.close() }
        let result = address.withSockAddr { connect(probe.descriptor, $0, $1) }
        let code = errno
        if result == 0 || code == EAGAIN || code == EINPROGRESS {
            throw ServerError(
                .addressInUse, "cannot listen on \(path): another server is listening on it", errno: EADDRINUSE
            )
        }
        if code == ECONNREFUSED {
            unlink(path)
        }
    }
}
