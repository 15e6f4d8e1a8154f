/// One datagram as a blocking handler sees it: socketserver's `request` (the packet and the socket to
/// answer on) and `client_address` in one object.
///
/// Each `reply` sends one datagram at once; a handler that sends nothing sends nothing (no empty datagram).
/// Used by one thread: the one running the handler.
public final class DatagramRequest {
    /// The datagram, whole: a larger one than `maximumDatagramSize` never reaches a handler.
    public let datagram: [UInt8]
    /// The sender. For a Unix client that did not bind a path it is unnamed, and replies are dropped.
    public let clientAddress: SocketAddress
    /// The server that received the datagram: `server.shutdown()` may be called from a handler.
    /// (Unowned: the server waits for its handlers before it goes.)
    public unowned(unsafe) let server: DatagramServer

    private let socket: DatagramSocket

    init(datagram: [UInt8], clientAddress: SocketAddress, server: DatagramServer, socket: DatagramSocket) {
        self.datagram = datagram
        self.clientAddress = clientAddress
        self.server = server
        self.socket = socket
    }

    /// Sends one datagram back to the client.
    ///
    /// - Throws: `ConnectionError` when the kernel refuses it (`.peerClosed`: no one at the client's address
    ///   any more) or the send buffer stays full (`.replyDropped`). Either way the datagram is dropped and counted.
    public func reply(_ bytes: [UInt8]) throws(ConnectionError) {
        try send(bytes, to: clientAddress)
    }

    /// Sends the string's UTF-8 bytes as one datagram back to the client.
    public func reply(_ text: String) throws(ConnectionError) {
        try reply(Array(text.utf8))
    }

    /// Sends one datagram to any address.
    public func send(_ bytes: [UInt8], to address: SocketAddress) throws(ConnectionError) {
        let outcome = bytes.withUnsafeBytes { bytes in
            Result { () throws(ConnectionError) in try socket.sendWaiting(bytes, to: address) }
        }
        try outcome.get()
    }
}
