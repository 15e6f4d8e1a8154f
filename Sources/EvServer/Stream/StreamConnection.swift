internal import CLibEv

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
    /// The descriptor, owned: closed by `finish`, or given away by `detach`.
    @exclusivity(unchecked) var socket: SocketDescriptor
    private let handler: any StreamEventHandler
    /// The table (`ConnectionOwner`), holding the connection until `finish()`; called without a retain, only while
    /// open and in `finish()` and `detach()`, which end that (an unowned existential was retained per call).
    let owner: Unmanaged<ConnectionTable>
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
    /// The read watcher's `ev_io`, from the table's `WatcherSlab` (no allocation per connection); `data`
    /// holds the connection, unretained. Never touched once closed: the table takes it back then.
    let readIO: UnsafeMutablePointer<ev_io>
    /// Made on first need (the kernel did not take a whole write): most connections never need one, and
    /// an idle connection is lighter without it.
    private var writeWatcher: IOWatcher?
    var idleTimer: TimerWatcher?
    /// `readTimeout`: restarted by each read; only counts while the server is ready to read.
    var readTimer: TimerWatcher?
    /// `writeTimeout`: runs while output is queued; restarted by each write progress.
    var writeTimer: TimerWatcher?
    /// `maximumLifetime`.
    var lifetimeTimer: TimerWatcher?
    /// A watcher trampoline is running without a reference to the connection; `finish` then keeps it (see there).
    @exclusivity(unchecked) var inWatcherCall = false, keptForWatcherCall = false
    /// Bytes each way and why it ended, for `ServerHooks.connectionClosed` and the metrics.
    @exclusivity(unchecked) var tally: ConnectionTally

    init(
        descriptor: CInt, clientAddress: SocketAddress, id: UInt64, handler: any StreamEventHandler,
        owner: Unmanaged<ConnectionTable>, server: Unmanaged<StreamServer>, loop: EventLoop,
        readBuffer: UnsafeMutableRawBufferPointer, readIO: UnsafeMutablePointer<ev_io>, settings: ConnectionSettings,
        tally: ConnectionTally
    ) {
        socket = SocketDescriptor(descriptor)
        self.readIO = readIO
        self.tally = tally
        self.clientAddress = clientAddress
        self.id = id
        self.handler = handler
        self.owner = owner
        self.server = server.takeUnretainedValue()
        self.readBuffer = readBuffer
        self.loop = loop
        highWaterMark = settings.highWaterMark
        lowWaterMark = settings.lowWaterMark
        CLibEv_ev_io_init(readIO, streamConnectionReadable, descriptor, IOEvents.read.rawValue)
        CLibEv_ev_set_data(readIO, Unmanaged.passUnretained(self).toOpaque())
        if settings.hasTimeouts { makeTimers(settings) }
    }

    /// Whether the read timeout applies now: the connection waits for input, not for the client to read
    /// its replies (the write timeout's business).
    var awaitsInput: Bool { state == .open && !readPausedForBackPressure }

    /// Not closed (nor detached) yet.
    var isOpen: Bool { state != .closed }

    /// Starts watching the connection and tells the handler. Called once by the server.
    func open() {
        ev_io_start(loop.raw, readIO)
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
                    loop: loop, descriptor: descriptor, events: .write, owner: self,
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
        guard state != .closed else { return }  // readIO went back to the table
        if state == .open && !readPausedForBackPressure && !readPausedByHandler {
            ev_io_start(loop.raw, readIO)
        } else {
            ev_io_stop(loop.raw, readIO)
        }
    }

    /// Runs a handler callback; an error it throws is reported once and the connection closed.
    private func callHandler(_ body: () throws -> Void) {
        guard state != .closed else { return }
        do {
            try body()
        } catch {
            owner._withUnsafeGuaranteedRef { $0.reportHandlerError(error, client: clientAddress) }
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
        // Checked first: the reason's copy cost ~120 instructions, and usually one is known (closed-by-peer).
        if tally.reason == nil { tally.note(reason ?? error.map(ConnectionTally.reason(for:)) ?? .closedByHandler) }
        // One by one: arrays of them cost ~400 instructions a connection to make and destroy.
        ev_io_stop(loop.raw, readIO)
        writeWatcher?.stop()
        idleTimer?.stop()
        readTimer?.stop()
        writeTimer?.stop()
        lifetimeTimer?.stop()
        writeBuffer.removeAll()
        if detaching { return true }
        socket.close()
        owner._withUnsafeGuaranteedRef { $0.connectionDidClose(self, tally: tally) }
        handler.connectionClosed(self, error: error)
        return true
    }
}
