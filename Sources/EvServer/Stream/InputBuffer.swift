/// Bytes received and not yet consumed, cut into lines: the framing behind `StreamRequest.readLine`, and
/// usable by event handlers that receive a line protocol in arbitrary chunks.
///
/// Memory stays bounded: `nextLine(maxLength:)` refuses a line once `maxLength` bytes wait without a
/// newline, and `append` refuses to hold more than `limit` bytes.
public struct InputBuffer: Sendable {
    /// Most bytes held at once; `append` beyond it throws `ConnectionError.inputTooLarge`.
    public let limit: Int
    private var storage: [UInt8] = []
    private var start = 0
    /// Bytes after `start` already searched for a newline, so each byte is scanned once.
    private var scanned = 0

    /// An empty buffer that holds at most `limit` bytes.
    public init(limit: Int = .max) {
        precondition(limit > 0, "an input buffer needs room for at least one byte")
        self.limit = limit
    }

    /// Bytes held and not yet consumed.
    public var count: Int { storage.count - start }
    /// Room left before `limit`.
    public var room: Int { limit - count }
    /// True when no byte is buffered.
    public var isEmpty: Bool { count == 0 }

    /// Adds received bytes at the end.
    public mutating func append(_ bytes: UnsafeRawBufferPointer) throws(ConnectionError) {
        guard bytes.count <= room else {
            throw ConnectionError(.inputTooLarge, "more than \(limit) bytes of input are waiting to be read")
        }
        compactIfWorthIt()
        storage.append(contentsOf: bytes)
    }

    /// The next complete line, including its `\n`; `nil` while none is complete.
    ///
    /// - Throws: `ConnectionError.lineTooLong` when `maxLength` bytes are held without a newline among them.
    public mutating func nextLine(maxLength: Int) throws(ConnectionError) -> [UInt8]? {
        if let newline = storage[(start + scanned)...].firstIndex(of: UInt8(ascii: "\n")) {
            let length = newline + 1 - start
            if length > maxLength { throw ConnectionError(.lineTooLong, "a line is longer than \(maxLength) bytes") }
            return take(length)
        }
        scanned = count
        if scanned >= maxLength { throw ConnectionError(.lineTooLong, "a line is longer than \(maxLength) bytes") }
        return nil
    }

    /// Removes and returns the first `length` bytes (at most `count`).
    public mutating func take(_ length: Int) -> [UInt8] {
        let end = start + min(length, count)
        let bytes = Array(storage[start..<end])
        consume(upTo: end)
        return bytes
    }

    /// Removes the first `length` bytes (at most `count`) and appends them to `bytes`: `take` into an
    /// array the caller reuses, so that a steady stream of reads allocates nothing.
    mutating func take(_ length: Int, appendingTo bytes: inout [UInt8]) {
        let end = start + min(length, count)
        bytes.append(contentsOf: storage[start..<end])
        consume(upTo: end)
    }

    /// Drops the bytes before `end`.
    private mutating func consume(upTo end: Int) {
        start = end
        scanned = 0
        if start == storage.count {
            // Keep the capacity of ordinary reads; give back what one huge message grew.
            storage.removeAll(keepingCapacity: storage.capacity <= 64 * 1024)
            start = 0
        }
    }

    /// Removes and returns everything held.
    public mutating func takeAll() -> [UInt8] { take(count) }

    /// Lends the first `length` bytes (at most `count`) to `body`, then removes them: `take` without an array.
    /// The bytes are valid only during the call.
    mutating func lend<Result>(_ length: Int, to body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        let range = start..<(start + min(length, count))
        defer { consume(upTo: range.upperBound) }
        return try storage.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[range])) }
    }

    /// Drops consumed bytes once they are at least half the storage, so appends stay amortised O(1).
    private mutating func compactIfWorthIt() {
        if start > 0 && start >= storage.count / 2 {
            storage.removeFirst(start)
            start = 0
        }
    }
}
