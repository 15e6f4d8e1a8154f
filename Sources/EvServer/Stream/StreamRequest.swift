#if canImport(Glibc)
import Glibc
#endif

/// One client connection as a blocking handler sees it: socketserver's `rfile`/`wfile`, client address
/// and server in one object.
///
/// Reads are buffered; `write` returns only when every byte is with the kernel (never a partial write).
/// A read or write that waits longer than `idleTimeout` throws `ConnectionError.timedOut`, which the
/// handler may catch. Used by one thread: the one running the handler.
public final class StreamRequest {
    /// The client's address (an unnamed path for most Unix-socket clients).
    public let clientAddress: SocketAddress
    /// The server that accepted the connection: `server.shutdown()` may be called from a handler.
    /// (Unowned: the server waits for its handlers before it goes.)
    public unowned(unsafe) let server: StreamServer
    /// Seconds a read or write may wait; starts as the server's `idleTimeout`.
    @exclusivity(unchecked) public var idleTimeout: Double?
    /// Seconds a read may wait (the server's `readTimeout`), besides `idleTimeout`.
    @exclusivity(unchecked) public var readTimeout: Double?
    /// Seconds a write may wait for the client to take bytes (the server's `writeTimeout`).
    @exclusivity(unchecked) public var writeTimeout: Double?
    /// `readLine()`'s default limit: the server's `maximumLineLength`.
    @exclusivity(unchecked) public var maximumLineLength: Int
    /// When the connection's `maximumLifetime` ends (monotonic seconds); reads and writes fail after it.
    let deadline: Double?

    let socket: Socket
    /// Serialises the handler's writes with messages other threads deliver (`StreamServer.send(_:to:)`), and
    /// with the close: each write is whole, never interleaved with another.
    let writeLock = Lock(())
    /// How long a delivered message may wait for the client (the server's write or idle timeout, else 10 s).
    let deliveryTimeout: Double
    /// The connection's id, for `StreamServer.send(_:to:)` and `broadcast` (set once it is registered).
    @exclusivity(unchecked) public internal(set) var id: ConnectionID = 0
    @exclusivity(unchecked) var input: InputBuffer
    /// The array `read(upTo:lending:)` lends, kept for its capacity.
    @exclusivity(unchecked) var lent: [UInt8] = []
    /// What `bufferedWrite` holds until `flush`.
    @exclusivity(unchecked) private var output: [UInt8] = []
    @exclusivity(unchecked) private(set) var inputEnded = false
    /// Whether the socket waits in the kernel (see `prepareToRead`): one `recv` does what `recv` + `poll` +
    /// `recv` would (close and drain still wake it, with `shutdown`).
    @exclusivity(unchecked) var blockingIO = false
    /// The `SO_RCVTIMEO` set on the socket, in seconds (0: none, wait forever).
    @exclusivity(unchecked) var receiveTimeout = 0.0
    /// Reads that waited with `poll` (see `prepareToRead`).
    @exclusivity(unchecked) var readsPolled = 0
    /// Bytes read and why the connection ended, for its summary (the handler's thread only).
    @exclusivity(unchecked) var tally = ConnectionTally()
    /// Bytes written (under `writeLock`: other threads deliver messages too).
    @exclusivity(unchecked) var bytesSent = 0
    /// The event handler `handOff(to:)` named, if any.
    @exclusivity(unchecked) var successor: HandOff?
    /// Where `fill` reads: allocated at the first read, never zeroed (a zeroed array cost a 16 KiB memset
    /// per connection, half of pool mode's instructions per churned connection).
    @exclusivity(unchecked) var scratch: UnsafeMutableRawBufferPointer?
    static let readChunk = 16 * 1024

    init(socket: Socket, clientAddress: SocketAddress, server: StreamServer, configuration: ServerConfiguration) {
        self.socket = socket
        self.clientAddress = clientAddress
        self.server = server
        idleTimeout = configuration.idleTimeout
        readTimeout = configuration.readTimeout
        writeTimeout = configuration.writeTimeout
        maximumLineLength = configuration.maximumLineLength
        input = InputBuffer(limit: configuration.maximumInputBuffer)
        deadline = configuration.maximumLifetime.map { MonotonicClock.now + $0 }
        deliveryTimeout = configuration.writeTimeout ?? configuration.idleTimeout ?? 10
    }

    deinit { scratch?.deallocate() }

    // MARK: Reading

    /// Reads one line, including its `\n`. At end of input returns the unterminated rest, then `nil`.
    ///
    /// - Parameter maxLength: a longer line throws `ConnectionError.lineTooLong`, bounding memory; by
    ///   default `maximumLineLength` (and never more than the server's `maximumInputBuffer`).
    public func readLine(maxLength: Int? = nil) throws -> [UInt8]? {
        let maxLength = min(maxLength ?? maximumLineLength, input.limit)
        while true {
            do {
                if let line = try input.nextLine(maxLength: maxLength) { return line }
            } catch {
                throw ConnectionError(.lineTooLong, "line from \(clientAddress) is longer than \(maxLength) bytes")
            }
            if try !fill() {
                return input.isEmpty ? nil : input.takeAll()
            }
        }
    }

    /// Reads what is available, at most `maxLength` bytes, waiting for at least one. Empty at end of input.
    public func read(upTo maxLength: Int) throws -> [UInt8] {
        precondition(maxLength > 0, "read(upTo:) needs a positive length")
        if input.isEmpty, try !fill() { return [] }
        return input.take(maxLength)
    }

    /// Reads exactly `count` bytes; `nil` when the input ends first (the partial bytes are dropped).
    ///
    /// - Throws: `ConnectionError.inputTooLarge` when `count` is more than the server's `maximumInputBuffer`.
    public func read(exactly count: Int) throws -> [UInt8]? {
        guard count <= input.limit else {
            throw ConnectionError(
                .inputTooLarge,
                "read(exactly: \(count)) from \(clientAddress) is more than maximumInputBuffer (\(input.limit) bytes)"
            )
        }
        while input.count < count {
            if try !fill() { return nil }
        }
        return input.take(count)
    }

    /// Reads until the client ends its input (socketserver's `rfile.read()`).
    ///
    /// - Parameter maxLength: the most bytes it may return, by default the server's `maximumInputBuffer`;
    ///   more input than that throws `ConnectionError.inputTooLarge` (memory stays bounded).
    public func readToEnd(maxLength: Int? = nil) throws -> [UInt8] {
        let limit = min(maxLength ?? input.limit, input.limit)
        while true {
            // A full buffer cannot tell whether more follows: input of `maximumInputBuffer` bytes is too long.
            guard input.count <= limit, input.room > 0 else {
                throw ConnectionError(
                    .inputTooLarge, "input from \(clientAddress) is longer than \(limit) bytes (readToEnd)"
                )
            }
            if try !fill() { return input.takeAll() }
        }
    }

    /// Appends one read's worth of bytes (no more than the buffer has room for), waiting up to the
    /// timeouts; `false` at end of input.
    func fill() throws -> Bool {
        if inputEnded { return false }
        let room = min(StreamRequest.readChunk, input.room)
        precondition(room > 0, "fill() called with a full input buffer")
        let scratch = scratch ?? .allocate(byteCount: StreamRequest.readChunk, alignment: 1)
        self.scratch = scratch
        guard let count = try receive(into: UnsafeMutableRawBufferPointer(rebasing: scratch[..<room])) else {
            return false
        }
        try input.append(UnsafeRawBufferPointer(rebasing: scratch[..<count]))
        return true
    }

    /// One read into `buffer`, waiting up to the timeouts: the count read, or `nil` at end of input.
    func receive(into buffer: UnsafeMutableRawBufferPointer) throws -> Int? {
        if inputEnded { return nil }
        try prepareToRead()
        while true {
            switch try mapErrors({ try socket.read(into: buffer) }) {
            case .bytes(let count):
                tally.bytesReceived &+= count
                return count
            case .endOfFile:
                inputEnded = true
                tally.note(.closedByPeer)
                return nil
            case .wouldBlock:
                try waitFor(events: CInt(POLLIN), limit: readTimeout, doing: "reading from")
            }
        }
    }

    // MARK: Writing

    /// Sends every byte, waiting while the kernel's buffer is full; returns the count sent.
    @discardableResult
    public func write(_ bytes: [UInt8]) throws -> Int {
        try bytes.withUnsafeBytes { try write(bytes: $0) }
    }

    /// Sends the string's UTF-8 bytes; returns the count sent.
    @discardableResult
    public func write(_ text: String) throws -> Int {
        var text = text
        return try text.withUTF8 { try write(bytes: UnsafeRawBufferPointer($0)) }
    }

    /// Adds `bytes` to the output buffer without sending (socketserver's buffered `wfile`): `flush()` sends
    /// them, and so does an unbuffered `write`, which sends what is buffered first. The server flushes
    /// what is left when the handler returns. A buffer above `bufferedWriteLimit` (64 KiB) flushes itself.
    public func bufferedWrite(_ bytes: [UInt8]) throws {
        output.append(contentsOf: bytes)
        if output.count > StreamRequest.bufferedWriteLimit { try flush() }
    }

    /// Adds the string's UTF-8 bytes to the output buffer (see `bufferedWrite(_:)`).
    public func bufferedWrite(_ text: String) throws {
        try bufferedWrite(Array(text.utf8))
    }

    /// Sends what `bufferedWrite` buffered, waiting as `write` does.
    public func flush() throws {
        guard !output.isEmpty else { return }
        let pending = output
        output.removeAll(keepingCapacity: true)
        try pending.withUnsafeBytes { _ = try send($0) }
    }

    /// Past this many buffered bytes `bufferedWrite` flushes.
    public static let bufferedWriteLimit = 64 * 1024

    /// Sends every byte of `bytes` (after what `bufferedWrite` buffered), waiting while the kernel's buffer
    /// is full; returns the count sent.
    @discardableResult
    public func write(bytes: UnsafeRawBufferPointer) throws -> Int {
        try flush()
        return try send(bytes)
    }

    private func send(_ bytes: UnsafeRawBufferPointer) throws -> Int {
        try writeLock.withLock { _ in try sendUnlocked(bytes) }
    }

    private func sendUnlocked(_ bytes: UnsafeRawBufferPointer) throws -> Int {
        let neverWait = try prepareToWrite()
        var sent = 0
        while sent < bytes.count {
            let remaining = UnsafeRawBufferPointer(rebasing: bytes[sent...])
            if let count = try mapErrors({ try socket.write(remaining, neverWait: neverWait) }) {
                sent += count
                bytesSent &+= count
            } else {
                try waitFor(events: CInt(POLLOUT), limit: writeTimeout, doing: "writing to")
            }
        }
        return sent
    }

    // MARK: Internals

    /// Runs a socket call, turning its `SystemError` into the `ConnectionError` handlers see.
    func mapErrors<R>(_ body: () throws -> R) throws(ConnectionError) -> R {
        guard socket.isOpen else { throw ConnectionError(.closed, "the connection to \(clientAddress) is closed") }
        if let deadline, MonotonicClock.now >= deadline {
            tally.note(.lifetime)
            throw ConnectionError(.timedOut, "the connection to \(clientAddress) reached its maximum lifetime")
        }
        do {
            return try body()
        } catch let error as SystemError {
            let failure = ConnectionError(systemError: error, client: clientAddress)
            tally.note(ConnectionTally.reason(for: failure))
            throw failure
        } catch {
            preconditionFailure("unexpected error from a socket call: \(error)")
        }
    }

    /// Sends what is still buffered, half-closes, then closes the socket (socketserver's `shutdown_request`).
    func close() {
        guard socket.isOpen else { return }
        try? flush()
        writeLock.withLock { _ in
            socket.shutdownWrite()
            socket.close()
        }
    }
}
