/// What every server offers, whatever its transport: for programs that run several servers of different
/// kinds (a daemon's listeners) and treat them alike. `StreamServer` and `DatagramServer` conform.
public protocol SocketServer: AnyObject, Sendable {
    /// The configuration the server was created with.
    var configuration: ServerConfiguration { get }
    /// The address the server is bound to, with the real port when port 0 was asked.
    var localAddress: SocketAddress { get }
    /// Serves until `shutdown()`; returns at once if `shutdown()` came first.
    func serveForever() throws(ServerError)
    /// Starts serving on the server's loop thread and returns at once.
    func start() throws(ServerError)
    /// Serves one client (connection or datagram). - Returns: `false` when it timed out.
    @discardableResult func handleRequest() throws(ServerError) -> Bool
    /// Stops serving (from any thread).
    func shutdown()
    /// Stops accepting, lets open work finish for up to `timeout` seconds, then closes.
    @discardableResult func shutdownGracefully(timeout: Double) -> Bool
    /// Closes everything. Idempotent.
    func close()
}

extension StreamServer: SocketServer {}
extension DatagramServer: SocketServer {}
