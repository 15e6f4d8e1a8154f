/// One client connection as an async handler sees it: awaiting reads, writes that suspend while the client
/// is slow to take replies, and the client's address and server.
///
/// Confined to its loop's thread: the handler runs there (see `StreamAsyncHandler`), and so does every
/// method. It is `@unchecked Sendable` only so that the handler's task can hold it; every entry point
/// checks the thread. Its state is `@exclusivity(unchecked)`: one thread, and no method holds an access
/// to it across a call that could reach it again, so the runtime checks would only cost time.
public final class AsyncConnection: @unchecked Sendable {
    /// The client's address.
    public let clientAddress: SocketAddress
    /// The connection's id within its server (for `StreamServer.send(_:to:)`).
    public var id: ConnectionID { connection.id }
    /// The server that accepted the connection.
    public var server: StreamServer { connection.server }
    /// `readLine()`'s default limit: the server's `maximumLineLength`.
    @exclusivity(unchecked) public var maximumLineLength: Int

    let connection: StreamConnection
    /// `connection.loop`, stored: read on every resume, and a stored `let` costs no retain/release.
    private let loop: EventLoop
    @exclusivity(unchecked) private var input = InputBuffer()
    /// Input the connection's read callback lends while the handler runs inside it (resumed there from a
    /// read with nothing buffered): `read(upTo:lending:)` lends it on without copying it into `input`; the
    /// other reads, and the callback once the handler waits again, move what is left into `input`. Empty
    /// outside `received(_:)`, whose buffer it points into.
    @exclusivity(unchecked) private var lentInput = UnsafeRawBufferPointer(start: nil, count: 0)
    /// Reading pauses while this much input waits (the server's `maximumInputBuffer`).
    private let inputLimit: Int
    @exclusivity(unchecked) private var inputEnded = false
    /// Why the connection closed under the handler, once it has.
    @exclusivity(unchecked) private var failure: ConnectionError?
    /// The handler's task, waiting for input or for the write queue to drain.
    @exclusivity(unchecked) private var readWaiter: UnsafeContinuation<Void, any Error>?
    @exclusivity(unchecked) private var writeWaiter: UnsafeContinuation<Void, any Error>?

    init(connection: StreamConnection, configuration: ServerConfiguration) {
        self.connection = connection
        loop = connection.loop
        clientAddress = connection.clientAddress
        maximumLineLength = configuration.maximumLineLength
        inputLimit = configuration.maximumInputBuffer
    }

    // MARK: Reading

    /// Reads one line, including its `\n`. At end of input returns the unterminated rest, then `nil`.
    ///
    /// - Parameter maxLength: a longer line throws `ConnectionError.lineTooLong`; by default
    ///   `maximumLineLength`.
    public nonisolated(nonsending) func readLine(maxLength: Int? = nil) async throws -> [UInt8]? {
        let maxLength = min(maxLength ?? maximumLineLength, inputLimit)
        keepLentInput()
        while true {
            do {
                if let line = try input.nextLine(maxLength: maxLength) { return consumed(line) }
            } catch {
                throw ConnectionError(.lineTooLong, "line from \(clientAddress) is longer than \(maxLength) bytes")
            }
            if try await !waitForInput() {
                return input.isEmpty ? nil : consumed(input.takeAll())
            }
        }
    }

    /// Reads what is available, at most `maxLength` bytes, waiting for at least one. Empty at end of input.
    public nonisolated(nonsending) func read(upTo maxLength: Int) async throws -> [UInt8] {
        precondition(maxLength > 0, "read(upTo:) needs a positive length")
        keepLentInput()
        if input.isEmpty, try await !waitForInput() { return [] }
        return consumed(input.take(maxLength))
    }

    /// Reads what is available, at most `maxLength` bytes, waiting for at least one, and lends them to `body`
    /// (empty at end of input): `read(upTo:)` without an array per read. The bytes are valid only during
    /// the call.
    public nonisolated(nonsending) func read<Result>(
        upTo maxLength: Int, lending body: (UnsafeRawBufferPointer) throws -> Result
    ) async throws -> Result {
        precondition(maxLength > 0, "read(upTo:lending:) needs a positive length")
        if input.isEmpty, lentInput.isEmpty, try await !waitForInput(lending: true) {
            return try body(UnsafeRawBufferPointer(start: nil, count: 0))
        }
        if input.isEmpty, !lentInput.isEmpty {  // straight from the read callback's buffer
            let count = min(maxLength, lentInput.count)
            let bytes = UnsafeRawBufferPointer(start: lentInput.baseAddress, count: count)
            lentInput = UnsafeRawBufferPointer(start: lentInput.baseAddress! + count, count: lentInput.count - count)
            return try body(bytes)
        }
        defer { consumed() }
        return try input.lend(maxLength, to: body)
    }

    /// Reads exactly `count` bytes; `nil` when the input ends first.
    ///
    /// - Throws: `ConnectionError.inputTooLarge` when `count` is more than the server's `maximumInputBuffer`.
    public nonisolated(nonsending) func read(exactly count: Int) async throws -> [UInt8]? {
        guard count <= inputLimit else {
            throw ConnectionError(
                .inputTooLarge, "read(exactly: \(count)) is more than maximumInputBuffer (\(inputLimit) bytes)"
            )
        }
        keepLentInput()
        while input.count < count {
            if try await !waitForInput() { return nil }
        }
        return consumed(input.take(count))
    }

    /// Reads until the client ends its input.
    ///
    /// - Parameter maxLength: the most bytes it may return, by default the server's `maximumInputBuffer`;
    ///   more input than that throws `ConnectionError.inputTooLarge`.
    public nonisolated(nonsending) func readToEnd(maxLength: Int? = nil) async throws -> [UInt8] {
        let limit = min(maxLength ?? inputLimit, inputLimit)
        keepLentInput()
        while try await waitForInput() {
            // A full buffer cannot tell whether more follows: input of `maximumInputBuffer` bytes is too long.
            guard input.count <= limit, input.count < inputLimit else {
                throw ConnectionError(
                    .inputTooLarge, "input from \(clientAddress) is longer than \(limit) bytes (readToEnd)"
                )
            }
        }
        return consumed(input.takeAll())
    }

    /// Waits until more input arrives (`true`) or the input ends (`false`); throws when the connection
    /// closed under the handler or timed out. The new input is in `input`, or in `lentInput` when `lending`.
    ///
    /// Inlined into the reads: one async frame less to allocate per read that waits.
    @inline(__always)
    private nonisolated(nonsending) func waitForInput(lending: Bool = false) async throws -> Bool {
        loop.preconditionInLoop()
        if let failure { throw failure }
        if inputEnded { return false }
        let before = input.count
        if before >= inputLimit { return true }  // the caller finds what it needs in what is there
        try await suspend { readWaiter = $0 }
        if !lending { keepLentInput() }
        if let failure { throw failure }
        return input.count + lentInput.count > before || !inputEnded
    }

    /// Moves what is left of `lentInput` into `input`.
    private func keepLentInput() {
        if lentInput.isEmpty { return }
        try! input.append(lentInput)  // unlimited buffer: reading pauses at `inputLimit` instead
        lentInput = UnsafeRawBufferPointer(start: nil, count: 0)
        if input.count >= inputLimit { connection.pauseReading() }
    }

    /// Resumes reading once the handler has taken input below the limit.
    private func consumed(_ bytes: [UInt8]) -> [UInt8] {
        consumed()
        return bytes
    }

    private func consumed() {
        if input.count < inputLimit { connection.resumeReading() }
    }

    // MARK: Writing

    /// Queues `bytes` for the client; suspends while the queue is above the server's high water mark (a
    /// client slow to read its replies), so memory stays bounded.
    public nonisolated(nonsending) func write(_ bytes: UnsafeRawBufferPointer) async throws {
        try queue(bytes)
        try await waitForRoom()
    }

    /// Queues `bytes`; suspends while the queue is above the high water mark.
    public nonisolated(nonsending) func write(_ bytes: [UInt8]) async throws {
        try bytes.withUnsafeBytes { try queue($0) }
        try await waitForRoom()
    }

    /// Queues the string's UTF-8 bytes; suspends while the queue is above the high water mark.
    public nonisolated(nonsending) func write(_ text: String) async throws {
        var text = text
        try text.withUTF8 { try queue(UnsafeRawBufferPointer($0)) }
        try await waitForRoom()
    }

    /// Queues `bytes` for the client without waiting: for replies produced in pieces, in a
    /// `read(upTo:lending:)` body or any other synchronous code, copied once into the write queue. Call
    /// `waitForRoom()` after, so that a client slow to take its replies holds the handler back.
    ///
    /// - Throws: `ConnectionError` once the connection has closed under the handler.
    public func queue(_ bytes: UnsafeRawBufferPointer) throws {
        loop.preconditionInLoop()
        if let failure { throw failure }
        connection.write(bytes)
    }

    /// Waits while the write queue is above the server's high water mark (the `write` methods end with it).
    ///
    /// - Throws: `ConnectionError` once the connection has closed under the handler.
    /// (Inlinable, so that the common case, room and no failure, costs the caller no async call and no
    /// async frame.)
    @inlinable
    public nonisolated(nonsending) func waitForRoom() async throws {
        if mustWaitForRoom { try await waitForRoomOrFailure() }
    }

    /// Whether `waitForRoom()` has more to do than return: the write queue is above the high water mark, or
    /// the connection has failed.
    @usableFromInline var mustWaitForRoom: Bool {
        failure != nil || connection.bufferedByteCount > connection.highWaterMark
    }

    @usableFromInline nonisolated(nonsending) func waitForRoomOrFailure() async throws {
        while true {
            if let failure { throw failure }
            guard connection.bufferedByteCount > connection.highWaterMark else { return }
            try await suspend { writeWaiter = $0 }
        }
    }

    /// Suspends the handler's task until the loop resumes the continuation `store` keeps. Not
    /// `withUnsafeThrowingContinuation(isolation:)`: it hops to its isolation before suspending and back
    /// after, and with a task executor preference every hop asks the runtime for the preference under the
    /// task's status-record lock (~300 instructions each). The inheriting variant stays where the caller runs.
    @inline(__always)
    private nonisolated(nonsending) func suspend(_ store: (UnsafeContinuation<Void, any Error>) -> Void) async throws {
        try await _unsafeInheritExecutor_withUnsafeThrowingContinuation(store)
    }

    /// Closes the connection once the queued replies are sent.
    public func close() { connection.close() }

    /// Joins `topic`: `StreamServer.broadcast(_:topic:)` reaches the connection.
    public func join(topic: String) { connection.join(topic: topic) }

    /// Leaves `topic`.
    public func leave(topic: String) { connection.leave(topic: topic) }

    // MARK: Events from the connection (loop thread)

    func received(_ bytes: UnsafeRawBufferPointer) {
        lentInput = bytes
        // A handler waiting with nothing buffered resumes inside this callback (unless a job is running: see
        // `EventLoop.resumeInline`), and a lending read takes the bytes from here, uncopied.
        if input.isEmpty { resumeReader() }
        if lentInput.isEmpty { return }
        keepLentInput()
        resumeReader()
    }

    /// The first input of a connection whose handler starts on input: `start` starts the handler's task
    /// inside this callback, where its first read finds `bytes` lent, as a read resumed here would.
    func receivedFirst(_ bytes: UnsafeRawBufferPointer, start: () -> Void) {
        lentInput = bytes
        start()
        if lentInput.isEmpty { return }
        keepLentInput()
        resumeReader()
    }

    func inputDidEnd() {
        inputEnded = true
        resumeReader()
    }

    func writable() {
        guard let waiter = writeWaiter else { return }
        writeWaiter = nil
        loop.resumeInline { waiter.resume() }
    }

    func closed(_ error: ConnectionError?) {
        failure = error ?? ConnectionError(.closed, "the connection to \(clientAddress) is closed")
        inputEnded = true
        if let waiter = readWaiter {
            readWaiter = nil
            waiter.resume(throwing: failure!)
        }
        if let waiter = writeWaiter {
            writeWaiter = nil
            waiter.resume(throwing: failure!)
        }
    }

    private func resumeReader() {
        guard let waiter = readWaiter else { return }
        readWaiter = nil
        loop.resumeInline { waiter.resume() }  // the handler goes on inside this callback
    }
}
