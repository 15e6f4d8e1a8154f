/// A datagram server's socket as its `DatagramEventHandler` sees it: send datagrams to any client.
///
/// Confined to the server's loop thread. `send` never blocks: on UDP a datagram the kernel cannot take yet
/// (send buffer full) is queued and sent, in order, when the socket is writable; while more than the high
/// water mark is queued the server stops reading (the kernel queues, then drops, what arrives meanwhile), so
/// memory stays bounded. On a Unix socket a reply to a client whose queue is full is dropped at once and
/// counted (`DatagramStatistics.repliesFailed`): the kernel gives no way to wait for that one client.
public final class DatagramChannel {
    /// The address the server is bound to (with the real port when port 0 was asked).
    public var localAddress: SocketAddress { server.localAddress }
    /// The server. (Unowned: the server closes its channel before it goes.)
    public unowned(unsafe) let server: DatagramServer

    private struct Pending {
        let bytes: [UInt8]
        let client: SocketAddress
    }

    private let loop: EventLoop
    private let socket: DatagramSocket
    /// `socket.counters`, kept here: a stored `let` costs no retain to reach, for every reply.
    private let counters: DatagramCounters
    private let highWaterMark: Int
    private let lowWaterMark: Int
    /// Tells the core to pause (`true`) or resume (`false`) reading.
    private let onBackPressure: (Bool) -> Void
    // Unchecked: loop-confined, only short accesses in this file; the runtime checks cost ~5 % per datagram.
    @exclusivity(unchecked) private var pending: [Pending] = []
    @exclusivity(unchecked) private var pendingHead = 0
    @exclusivity(unchecked) private var pendingBytes = 0
    @exclusivity(unchecked) private var backPressured = false
    private var writeWatcher: IOWatcher!

    init(
        socket: DatagramSocket, server: DatagramServer, loop: EventLoop, configuration: ServerConfiguration,
        onBackPressure: @escaping (Bool) -> Void
    ) {
        self.socket = socket
        counters = socket.counters
        self.server = server
        self.loop = loop
        highWaterMark = configuration.writeBufferHighWaterMark
        lowWaterMark = configuration.writeBufferLowWaterMark
        self.onBackPressure = onBackPressure
        writeWatcher = IOWatcher(loop: loop, descriptor: socket.server.descriptor, events: .write) { [unowned self] _ in
            self.flush()
        }
    }

    /// Bytes of datagrams queued but not yet taken by the kernel.
    public var bufferedByteCount: Int { pendingBytes }

    /// Sends `datagram` to `client` (an empty one is a valid, empty datagram). A datagram the kernel
    /// refuses (client gone, unreachable, too large) is counted in the server's statistics and dropped.
    public func send(_ datagram: UnsafeRawBufferPointer, to client: SocketAddress) {
        loop.preconditionInLoop()
        guard socket.canReply(to: client) else { return }
        if pendingHead == pending.count, sendNow(datagram, to: client) { return }
        pending.append(Pending(bytes: Array(datagram), client: client))
        pendingBytes += datagram.count
        writeWatcher.start()
        if pendingBytes > highWaterMark && !backPressured {
            backPressured = true
            onBackPressure(true)
        }
    }

    /// Sends `datagram` to `client`, as `send(_:to:)` with a buffer does.
    public func send(_ datagram: [UInt8], to client: SocketAddress) {
        datagram.withUnsafeBytes { send($0, to: client) }
    }

    /// Sends the string's UTF-8 bytes as one datagram to `client`.
    public func send(_ text: String, to client: SocketAddress) {
        var text = text
        text.withUTF8 { send(UnsafeRawBufferPointer($0), to: client) }
    }

    /// Sends `datagram` if the kernel takes it now. - Returns: `false` when the send buffer is full (to be
    /// queued); `true` when sent, or refused by the kernel (counted as failed and dropped).
    @inline(__always)
    private func sendNow(_ datagram: UnsafeRawBufferPointer, to client: SocketAddress) -> Bool {
        do {
            guard try socket.trySend(datagram, to: client) else { return false }
            counters.countSentOnLoop()
        } catch {}
        return true
    }

    /// Sends queued datagrams while the kernel takes them.
    private func flush() {
        while pendingHead < pending.count {
            let next = pending[pendingHead]
            let sent = next.bytes.withUnsafeBytes { sendNow($0, to: next.client) }
            if !sent { return }
            pendingHead += 1
            pendingBytes -= next.bytes.count
            if backPressured && pendingBytes <= lowWaterMark {
                backPressured = false
                onBackPressure(false)
            }
        }
        pending.removeAll(keepingCapacity: pending.capacity <= 1024)
        pendingHead = 0
        writeWatcher.stop()
    }

    /// Sends what the kernel takes now, counts the rest as failed, and stops watching. Called once, by
    /// the server's close.
    func close() {
        flush()
        socket.counters.repliesFailed.increment(by: pending.count - pendingHead)
        pending.removeAll()
        pendingHead = 0
        pendingBytes = 0
        writeWatcher.stop()
    }
}
