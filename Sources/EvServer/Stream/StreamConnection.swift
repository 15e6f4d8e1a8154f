#if canImport(Glibc)
import Glibc
#endif

/// One client connection of an event-mode server, as its `StreamEventHandler` sees it.
///
/// Confined to the server's loop thread: every method traps elsewhere. Writes never block: what the kernel
/// cannot take is queued, and while more than the high water mark is queued the connection stops reading
/// from the client (so a client that does not read its replies cannot grow the server's memory).
public final class StreamConnection {
    /// The client's address.
    public let clientAddress: SocketAddress
    /// The connection's id: what `StreamServer.send(_:to:)` takes, unique within the server (and across
    /// the members of a `ServerGroup`); also in the logs.
    public let id: ConnectionID
    /// The server that accepted the connection. (Unowned: the server closes its connections before it goes.)
    public unowned(unsafe) let server: StreamServer

    private enum State { case open, inputEnded, closing, closed }

    let loop: EventLoop
    let socket: Socket
    private let handler: any StreamEventHandler
    unowned let owner: any ConnectionOwner
    /// The owner's buffer, shared by every connection's reads.
    private let readBuffer: UnsafeMutableRawBufferPointer
    let highWaterMark: Int
    private let lowWaterMark: Int
    // Unchecked: loop-confined, only short accesses in this file; the runtime checks cost ~8 % per round trip.
    @exclusivity(unchecked) private var state = State.open
    @exclusivity(unchecked) private var writeBuffer = WriteBuffer()
    @exclusivity(unchecked) private var readPausedForBackPressure = false
    /// Reading paused by the handler (`pauseReading()`), for input it cannot take yet.
    @exclusivity(unchecked) private var readPausedByHandler = false
    private var readWatcher: IOWatcher!
    /// Made on first need (the kernel did not take a whole write): most connections never need one, and
    /// an idle connection is lighter without it.
    private var writeWatcher: IOWatcher?
    private var idleTimer: TimerWatcher?
    /// `readTimeout`: restarted by each read; only counts while the server is ready to read.
    private var readTimer: TimerWatcher?
    /// `writeTimeout`: runs while output is queued; restarted by each write progress.
    private var writeTimer: TimerWatcher?
    /// `maximumLifetime`.
    private var lifetimeTimer: TimerWatcher?
    /// A watcher trampoline is running without a reference to the connection; `finish` then keeps it (see there).
    @exclusivity(unchecked) var inWatcherCall = false, keptForWatcherCall = false
    /// Bytes each way and why it ended, for `ServerHooks.connectionClosed` and the metrics.
    @exclusivity(unchecked) var tally: ConnectionTally

    init(
        socket: Socket, clientAddress: SocketAddress, id: UInt64, handler: any StreamEventHandler,
        owner: any ConnectionOwner, server: StreamServer, readBuffer: UnsafeMutableRawBufferPointer,
        configuration: ServerConfiguration, tally: ConnectionTally
    ) {
        self.socket = socket
        self.tally = tally
        self.clientAddress = clientAddress
        self.id = id
        self.handler = handler
        self.owner = owner
        self.server = server
        self.readBuffer = readBuffer
        loop = server.engine.loop
        highWaterMark = configuration.writeBufferHighWaterMark
        lowWaterMark = configuration.writeBufferLowWaterMark
        readWatcher = IOWatcher(
            loop: loop, descriptor: socket.descriptor, events: .read, owner: self, callback: streamConnectionReadable
        )
        idleTimer = timeoutTimer(configuration.idleTimeout, repeating: true, .idleTimeout) { "was idle for \($0) s" }
        readTimer = timeoutTimer(configuration.readTimeout, repeating: true, .readTimeout) { [unowned self] seconds in
            // Waiting for the client to read our replies is the write timeout's business.
            state == .open && !readPausedForBackPressure ? "sent nothing for \(seconds) s (read timeout)" : nil
        }
        writeTimer = timeoutTimer(configuration.writeTimeout, repeating: true, .writeTimeout) {
            "took none of its replies for \($0) s (write timeout)"
        }
        lifetimeTimer = timeoutTimer(configuration.maximumLifetime, repeating: false, .lifetime) {
            "reached the maximum lifetime of \($0) s"
        }
    }

    /// A timer that closes the connection with `.timedOut` after `seconds` (none when `nil`) for `reason`;
    /// `why` says why for the message, or `nil` when the timeout does not apply right now.
    private func timeoutTimer(
        _ seconds: Double?, repeating: Bool, _ reason: ConnectionSummary.Reason, why: @escaping (Double) -> String?
    ) -> TimerWatcher? {
        guard let seconds else { return nil }
        return TimerWatcher(loop: loop, after: seconds, repeat: repeating ? seconds : 0) { [unowned self] in
            guard let why = why(seconds) else { return }
            finish(error: ConnectionError(.timedOut, "\(clientAddress) \(why)"), reason: reason)
        }
    }

    /// Starts watching the connection and tells the handler. Called once by the server.
    func open() {
        readWatcher.start()
        idleTimer?.start()
        readTimer?.start()
        lifetimeTimer?.start()
        callHandler { try handler.connectionOpened(self) }
    }

    /// A connection handed over by a blocking handler: the input it had read but not taken, and whether the
    /// client had already ended its input, as if they arrived now.
    func receivedBefore(_ unread: [UInt8], inputEnded: Bool) {
        if !unread.isEmpty {
            unread.withUnsafeBytes { bytes in callHandler { try handler.connection(self, received: bytes) } }
        }
        if inputEnded { endInput(because: .closedByPeer) }
    }

    // MARK: Public API

    /// Bytes queued but not yet taken by the kernel.
    public var bufferedByteCount: Int { writeBuffer.count }

    /// True while the queue is below the high water mark: producers of unbounded output (chargen) should
    /// write while this holds and continue in `connectionWritable`.
    public var isWritable: Bool { writeBuffer.count < highWaterMark && (state == .open || state == .inputEnded) }

    /// Queues `bytes` for the client. Ignored once the connection is closing or closed.
    public func write(_ bytes: UnsafeRawBufferPointer) {
        loop.preconditionInLoop()
        guard state == .open || state == .inputEnded, !bytes.isEmpty else { return }
        var sent = 0
        if writeBuffer.isEmpty {
            do {
                sent = try socket.write(bytes) ?? 0
            } catch {
                finish(error: ConnectionError(systemError: error, client: clientAddress))
                return
            }
            tally.bytesSent &+= sent
            if sent > 0 { idleTimer?.restart() }
        }
        if sent < bytes.count {
            if writeBuffer.isEmpty { writeTimer?.restart() }
            writeBuffer.append(UnsafeRawBufferPointer(rebasing: bytes[sent...]))
            if writeWatcher == nil {
                writeWatcher = IOWatcher(
                    loop: loop, descriptor: socket.descriptor, events: .write, owner: self,
                    callback: streamConnectionWritable
                )
            }
            writeWatcher?.start()
            if writeBuffer.count > highWaterMark && !readPausedForBackPressure {
                readPausedForBackPressure = true
                updateReadWatcher()
            }
        }
    }

    /// Closes the connection once every queued byte is sent; reading stops at once.
    public func close() {
        loop.preconditionInLoop()
        guard state == .open || state == .inputEnded else { return }
        if writeBuffer.isEmpty {
            finish(error: nil)
        } else {
            state = .closing
            updateReadWatcher()
        }
    }

    /// The client half-closed (`reason` `.closedByPeer`), or the server treats it so (a graceful shutdown's
    /// deadline, `.drain`): reading stops and the handler hears `connectionInputEnded`.
    func endInput(because reason: ConnectionSummary.Reason) {
        guard state == .open else { return }
        tally.note(reason)
        state = .inputEnded
        updateReadWatcher()
        callHandler { try handler.connectionInputEnded(self) }
    }

    /// Stops reading from the client until `resumeReading()` (the kernel's buffer, then the client's
    /// window, hold what it sends meanwhile): for a handler whose input piles up faster than it is used.
    public func pauseReading() {
        loop.preconditionInLoop()
        readPausedByHandler = true
        updateReadWatcher()
    }

    /// Reads again after `pauseReading()`.
    public func resumeReading() {
        loop.preconditionInLoop()
        readPausedByHandler = false
        updateReadWatcher()
    }

    /// Closes the connection now, dropping queued bytes.
    public func abort() {
        loop.preconditionInLoop()
        finish(error: nil)
    }

    // MARK: Events

    /// The read watcher's event (`streamConnectionReadable`).
    func readable() {
        let buffer = readBuffer
        // A few reads per wake-up: enough to drain a burst, few enough to stay fair to other clients.
        for _ in 0..<4 {
            guard state == .open, !readPausedForBackPressure, !readPausedByHandler else { return }
            let result: Socket.ReadResult
            do {
                result = try socket.read(into: buffer)
            } catch {
                finish(error: ConnectionError(systemError: error, client: clientAddress))
                return
            }
            switch result {
            case .bytes(let count):
                tally.bytesReceived &+= count
                idleTimer?.restart()
                readTimer?.restart()
                callHandler {
                    try handler.connection(self, received: UnsafeRawBufferPointer(rebasing: buffer[..<count]))
                }
                if count < buffer.count { return }
            case .endOfFile:
                endInput(because: .closedByPeer)
                return
            case .wouldBlock:
                return
            }
        }
    }

    /// The write watcher's event (`streamConnectionWritable`).
    func writable() {
        do {
            try writeBuffer.send { bytes in
                let sent = try socket.write(bytes) ?? 0
                tally.bytesSent &+= sent
                return sent
            }
        } catch let error as SystemError {
            finish(error: ConnectionError(systemError: error, client: clientAddress))
            return
        } catch {
            preconditionFailure("unexpected error from send: \(error)")
        }
        idleTimer?.restart()
        writeTimer?.restart()
        if writeBuffer.isEmpty {
            writeWatcher?.stop()
            writeTimer?.stop()
            if state == .closing {
                finish(error: nil)
                return
            }
        }
        if readPausedForBackPressure && writeBuffer.count <= lowWaterMark {
            readPausedForBackPressure = false
            updateReadWatcher()
            callHandler { try handler.connectionWritable(self) }
        }
    }

    private func updateReadWatcher() {
        if state == .open && !readPausedForBackPressure && !readPausedByHandler {
            readWatcher.start()
        } else {
            readWatcher.stop()
        }
    }

    /// Runs a handler callback; an error it throws is reported once and the connection closed.
    private func callHandler(_ body: () throws -> Void) {
        guard state != .closed else { return }
        do {
            try body()
        } catch {
            owner.reportHandlerError(error, client: clientAddress)
            finish(error: nil, reason: .handlerError)
        }
    }

    /// Stops watchers and timers, drops queued bytes, closes the descriptor, tells the server and the handler
    /// (`detaching`: leaves those to `detach()`); `reason` for the summary. Runs once: `false` if already ended.
    @discardableResult func finish(
        error: ConnectionError?, reason: ConnectionSummary.Reason? = nil, detaching: Bool = false
    ) -> Bool {
        loop.preconditionInLoop()
        guard state != .closed else { return false }
        state = .closed
        keepForWatcherCall()
        tally.note(reason ?? error.map(ConnectionTally.reason(for:)) ?? .closedByHandler)
        for watcher in [readWatcher, writeWatcher] { watcher?.stop() }
        for timer in [idleTimer, readTimer, writeTimer, lifetimeTimer] { timer?.stop() }
        writeBuffer.removeAll()
        if detaching { return true }
        socket.close()
        owner.connectionDidClose(self, tally: tally)
        handler.connectionClosed(self, error: error)
        return true
    }
}
