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
        if input.isEmpty { return try receive(upTo: maxLength, lending: body) }
        // Taken out of the property for the call, so a read inside `body` cannot touch the lent bytes (it
        // lends a new array then); put back afterwards with its capacity.
        var bytes = lent
        lent = []
        defer { lent = bytes }
        bytes.removeAll(keepingCapacity: true)
        input.take(maxLength, appendingTo: &bytes)
        return try bytes.withUnsafeBytes(body)
    }

    /// With nothing buffered: reads into the read buffer and lends the bytes from there (no copy into the
    /// input and out again); what is beyond `maxLength` goes to the input for the next read.
    private func receive<Result>(
        upTo maxLength: Int, lending body: (UnsafeRawBufferPointer) throws -> Result
    ) throws -> Result {
        // Taken out of the property for the call, as above: a read inside `body` reads into a buffer of its
        // own, which is freed when this one is put back.
        let buffer = scratch ?? .allocate(byteCount: StreamRequest.readChunk, alignment: 1)
        scratch = nil
        defer {
            scratch?.deallocate()
            scratch = buffer
        }
        let room = min(StreamRequest.readChunk, input.room)
        guard let count = try receive(into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<room])) else {
            return try body(UnsafeRawBufferPointer(start: nil, count: 0))
        }
        let lent = min(count, maxLength)
        if count > lent { try input.append(UnsafeRawBufferPointer(rebasing: buffer[lent..<count])) }
        return try body(UnsafeRawBufferPointer(rebasing: buffer[..<lent]))
    }
}
