import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Reads the PROXY protocol header of each new connection of a listener with
/// `ServerConfiguration.proxyProtocol`, on the loop thread, before the connection is admitted: so the
/// client's real address is known before `allow`/`deny`, `verifyRequest`, the per-client limits and the
/// execution mode (event, sync, thread, pool, async) see the connection.
///
/// The header is peeked (`MSG_PEEK`) and only its own bytes are taken off the socket: what the client
/// sent after it stays in the kernel for the handler, in every mode. While a header is awaited the
/// connection holds one of `maximumConnections` (`ConnectionLimits.reserve`).
///
/// Confined to the server's loop thread.
final class ProxyHeaderReader {
    /// A connection whose header is awaited.
    private final class Pending {
        let socket: Socket
        let peer: SocketAddress
        /// The header's bytes taken so far (all of them header: taken only while it is incomplete).
        var bytes: [UInt8] = []
        var watcher: IOWatcher!
        var timer: TimerWatcher!
        init(socket: Socket, peer: SocketAddress) {
            self.socket = socket
            self.peer = peer
        }
    }

    private let context: ServerContext
    private let policy: ProxyProtocolPolicy
    private let limits: ConnectionLimits
    private let statistics: Lock<ProxyProtocolStatistics>
    /// Admits a connection whose header arrived, as the client it names.
    private let admit: (Socket, SocketAddress) -> Void
    private var pending: [CInt: Pending] = [:]
    /// Where headers are peeked; as long as the longest header.
    private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: ProxyHeader.maximumLength, alignment: 8)
    private var failureLog = LogThrottle()

    init(
        context: ServerContext, policy: ProxyProtocolPolicy, limits: ConnectionLimits,
        statistics: Lock<ProxyProtocolStatistics>, admit: @escaping (Socket, SocketAddress) -> Void
    ) {
        self.context = context
        self.policy = policy
        self.limits = limits
        self.statistics = statistics
        self.admit = admit
    }

    deinit {
        scratch.deallocate()
    }

    /// A connection was accepted from `peer` (the balancer): waits for its header, or closes it at once
    /// when `peer` may not send one.
    func begin(_ socket: Socket, peer: SocketAddress) {
        guard policy.trusts(peer) else {
            failed(.untrusted, peer: peer, reason: "source not trusted to send PROXY protocol headers")
            socket.close()
            return
        }
        limits.reserve()
        let connection = Pending(socket: socket, peer: peer)
        connection.watcher = IOWatcher(loop: context.loop, descriptor: socket.descriptor, events: .read) {
            [unowned self, unowned connection] _ in readable(connection)
        }
        connection.timer = TimerWatcher(loop: context.loop, after: policy.headerTimeout) {
            [unowned self, unowned connection] in
            end(connection, failure: .timedOut, reason: "header not complete within \(policy.headerTimeout) s")
        }
        pending[socket.descriptor] = connection
        connection.watcher.start()
        connection.timer.start()
    }

    private func readable(_ connection: Pending) {
        let old = connection.bytes.count
        let room = ProxyHeader.lengthBound(of: connection.bytes) - old
        let peeked: Int
        do {
            switch try connection.socket.read(into: .init(rebasing: scratch[..<room]), flags: CInt(MSG_PEEK)) {
            case .wouldBlock: return
            case .endOfFile: return end(connection, failure: .closedEarly, reason: "closed before its header ended")
            case .bytes(let count): peeked = count
            }
        } catch {
            return end(connection, failure: .closedEarly, reason: "\(error)")
        }
        connection.bytes.append(contentsOf: scratch[..<peeked])
        switch ProxyHeader.parse(connection.bytes) {
        case .incomplete:
            take(peeked, from: connection)
        case .done(let header, let consumed):
            take(consumed - old, from: connection)
            finish(connection, header: header)
        case .invalid(let reason):
            end(connection, failure: .invalid, reason: reason)
        }
    }

    /// Takes `count` bytes the peek showed off the socket (they are there: nothing else reads it).
    private func take(_ count: Int, from connection: Pending) {
        _ = try? connection.socket.read(into: .init(rebasing: scratch[..<count]))
    }

    private func finish(_ connection: Pending, header: ProxyHeader) {
        forget(connection)
        statistics.withLock { $0[header.source == nil ? .local : .proxied] += 1 }
        admit(connection.socket, header.source ?? connection.peer)
    }

    /// Counts a connection whose header failed, and closes it.
    private func end(_ connection: Pending, failure: ProxyProtocolStatistics.Outcome, reason: String) {
        forget(connection)
        failed(failure, peer: connection.peer, reason: reason)
        connection.socket.close()
        limits.releaseReservation()
    }

    private func forget(_ connection: Pending) {
        connection.watcher.stop()
        connection.timer.stop()
        pending[connection.socket.descriptor] = nil
    }

    private func failed(_ failure: ProxyProtocolStatistics.Outcome, peer: SocketAddress, reason: String) {
        statistics.withLock { $0[failure] += 1 }
        context.connectionRefused(peer, .proxy)
        guard let count = failureLog.occurrence() else { return }
        context.logger.debug(
            "PROXY protocol: connection refused: \(reason)",
            metadata: ["connection.peer": "\(peer)", "times": "\(count)"]
        )
    }

    /// Closes every connection still waiting for its header (the server closes).
    func closeAll() {
        for connection in pending.values {
            forget(connection)
            connection.socket.close()
            limits.releaseReservation()
        }
    }
}
