extension StreamConnection {
    /// The server's `maximumLineLength`, for line-oriented handlers (as `StreamRequest` has it).
    public var maximumLineLength: Int { server.engine.context.configuration.maximumLineLength }

    /// The connection's descriptor, for socket options (socketserver's `request.fileno()`). Do not read,
    /// write or close it: the connection does.
    public var descriptor: CInt { socket.descriptor }

    /// Queues `bytes` for the client, as `write(_:)` with a buffer does.
    public func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { write($0) }
    }

    /// Queues the string's UTF-8 bytes for the client.
    public func write(_ text: String) {
        var text = text
        text.withUTF8 { write(UnsafeRawBufferPointer($0)) }
    }
}
