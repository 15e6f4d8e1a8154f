/// What every server offers, whatever its transport: socketserver's lifecycle. `StreamServer` and
/// `DatagramServer` conform, and share one implementation of it (`ServerEngine`).
public protocol SocketServer: AnyObject, Sendable {
    /// The configuration the server was created with.
    var configuration: ServerConfiguration { get }
    /// The address the server is bound to, with the real port when port 0 was asked.
    var localAddress: SocketAddress { get }
    /// The server's socket (listening, or the datagram socket), for an outer `poll` (socketserver's
    /// `fileno()`): readable when a client waits. Do not accept on it, read from it or close it; it is
    /// closed (and the number may be reused) once the server is.
    var descriptor: CInt { get }
    /// Serves until `shutdown()` is called (from any thread), then returns; returns at once if `shutdown()`
    /// came first. Blocks the calling thread; handlers run on the loop thread or worker threads.
    func serveForever() throws(ServerError)
    /// Starts serving on the server's loop thread and returns at once; `shutdown()` stops it.
    func start() throws(ServerError)
    /// Serves one client (a connection or a datagram), waiting at most `configuration.timeout` seconds for
    /// it (`handleTimeout` is called when none came). A client refused by `verifyRequest` counts.
    /// - Returns: `false` when it timed out.
    @discardableResult func handleRequest() throws(ServerError) -> Bool
    /// Stops serving and waits until `serveForever()` has returned, unless called on the loop thread (from a
    /// handler), where it only asks, to avoid deadlock. Open connections stay open (`close()` closes them).
    func shutdown()
    /// Stops taking work at once, lets open work finish for up to `timeout` seconds, then closes. Blocks
    /// until closed, except from one of the server's own threads (a helper does it).
    /// - Returns: `true` when all open work finished by itself before the deadline.
    @discardableResult func shutdownGracefully(timeout: Double) -> Bool
    /// Stops serving, closes every connection and the socket (removing a Unix socket file that is still
    /// the server's), waits for worker threads, and frees the loop. Idempotent; from a handler it hands the
    /// work to a helper thread and returns at once.
    func close()
    /// For a restart without downtime: another process now serves this server's socket (it inherited
    /// `descriptor` and adopts it as `ServerConfiguration.boundSocket`, with `ownsBoundSocketFile`), so
    /// closing this server leaves the Unix socket file in place for it. Nothing changes for IP sockets.
    /// Call it once the other process serves, then drain this server (`shutdownGracefully(timeout:)`).
    func handOverSocketFile()
}

/// A transport's public server as the engine sees it: its engine, and what the transport adds to closing
/// and draining. Gives each conforming server the whole `SocketServer` API once.
protocol TransportServer<Transport>: SocketServer {
    associatedtype Transport: ServerTransport
    var engine: ServerEngine<Transport> { get }
    /// First step of `close()`, on the closing thread: wakes handlers blocked in I/O (a `.sync` handler may
    /// hold the loop thread that closing waits for). It must not capture the server: a close that runs from
    /// the server's `deinit` on one of its own threads hands it to a helper thread that outlives the server.
    var wakeBlockedHandlers: @Sendable () -> Void { get }
    /// A graceful shutdown, once no new work comes: waits for open work to finish until `deadline`
    /// (monotonic seconds), then asks what is left to end. - Returns: whether all finished in time.
    func drainOpenWork(until deadline: Double) -> Bool
}

extension TransportServer {
    /// The configuration the server was created with.
    public var configuration: ServerConfiguration { engine.context.configuration }
    /// The address the server is bound to, with the real port when port 0 was asked.
    public var localAddress: SocketAddress { engine.context.localAddress }
    /// The server's socket, for an outer `poll`; see `SocketServer.descriptor`.
    public var descriptor: CInt { engine.context.socket.number }
    /// Serves until `shutdown()`; see `SocketServer.serveForever()`.
    public func serveForever() throws(ServerError) { try engine.serveForever() }
    /// Serves on the loop thread and returns at once; see `SocketServer.start()`.
    public func start() throws(ServerError) { try engine.start() }
    /// Serves one client; see `SocketServer.handleRequest()`.
    @discardableResult public func handleRequest() throws(ServerError) -> Bool { try engine.handleRequest() }
    /// Stops serving; see `SocketServer.shutdown()`.
    public func shutdown() { engine.shutdown() }
    /// Drains, then closes; see `SocketServer.shutdownGracefully(timeout:)`.
    @discardableResult public func shutdownGracefully(timeout: Double) -> Bool {
        engine.shutdownGracefully(self, timeout: timeout)
    }
    /// Leaves the Unix socket file to the process that took the socket over; see
    /// `SocketServer.handOverSocketFile()`.
    public func handOverSocketFile() { engine.context.socket.handOverFile() }
    /// Closes everything; see `SocketServer.close()`.
    public func close() { engine.close(wakingBlockedHandlers: wakeBlockedHandlers) }
}

extension SocketServer {
    /// Runs `body` with the server, then closes it however `body` ends (socketserver's `with` block):
    /// `try TCPServer(...).serving { try $0.serveForever() }`.
    public func serving<Result>(_ body: (Self) throws -> Result) rethrows -> Result {
        defer { close() }
        return try body(self)
    }

    /// Runs `body` with the server, then closes it however `body` ends.
    public func serving<Result>(_ body: (Self) async throws -> Result) async rethrows -> Result {
        defer { close() }
        return try await body(self)
    }
}
