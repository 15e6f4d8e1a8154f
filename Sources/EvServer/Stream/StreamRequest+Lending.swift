extension StreamRequest {
    /// The connection's descriptor, for socket options (socketserver's `request.fileno()`). Do not close it.
    public var descriptor: CInt { socket.descriptor }

    /// Reads what is available, at most `maxLength` bytes, waiting for at least one, and lends them to
    /// `body` (empty at end of input): `read(upTo:)` without allocating an array per read. The bytes are
    /// valid only during the call; `body` may read from or write to the request.
    public func read<Result>(
        upTo maxLength: Int, lending body: (UnsafeRawBufferPointer) throws -> Result
    ) throws -> Result {
        precondition(maxLength > 0, "read(upTo:lending:) needs a positive length")
        if input.isEmpty, try !fill() { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        // Taken out of the property for the call, so a read inside `body` cannot touch the lent bytes (it
        // lends a new array then); put back afterwards with its capacity.
        var bytes = lent
        lent = []
        defer { lent = bytes }
        bytes.removeAll(keepingCapacity: true)
        input.take(maxLength, appendingTo: &bytes)
        return try bytes.withUnsafeBytes(body)
    }
}
