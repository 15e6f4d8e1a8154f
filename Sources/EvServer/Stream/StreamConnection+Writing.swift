extension StreamConnection {
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
