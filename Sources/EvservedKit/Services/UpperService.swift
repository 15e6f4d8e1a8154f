import EvServer

/// Upper-cases ASCII letters; other bytes pass through unchanged.
func uppercasedASCII(_ byte: UInt8) -> UInt8 {
    (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) ? byte - 32 : byte
}

/// What a client whose line is longer than the server's `maximumLineLength` gets before the server closes.
func lineTooLongReply(_ limit: Int) -> String {
    "ERROR line longer than \(limit) bytes\r\n"
}

/// The classic socketserver example: input back upper-cased (ASCII letters), answered as it arrives,
/// newline or not (the tutorial client sends a message without one and waits for the reply). Lines may be
/// `maximumLineLength` bytes long, newline not counted; the byte past that is not echoed: the line is cut
/// with CRLF, the error line follows, and the connection closes.
final class UpperService: StreamService, StreamEventHandler {
    private var limit = 0
    /// Bytes of the current line so far.
    private var lineLength = 0
    /// The upper-cased bytes of one piece of input (reused: no allocation per read once grown).
    private var scratch: [UInt8] = []

    init() {}

    func opened(maximumLineLength: Int, send: (UnsafeRawBufferPointer) throws -> Void) rethrows -> Bool {
        limit = maximumLineLength
        return false
    }

    func received(_ bytes: UnsafeRawBufferPointer, send: (UnsafeRawBufferPointer) throws -> Void) rethrows -> Bool {
        scratch.removeAll(keepingCapacity: true)
        var tooLong = false
        for byte in bytes {
            lineLength = byte == UInt8(ascii: "\n") ? 0 : lineLength + 1
            if lineLength > limit {
                tooLong = true
                break
            }
            scratch.append(uppercasedASCII(byte))
        }
        if tooLong { scratch.append(contentsOf: ("\r\n" + lineTooLongReply(limit)).utf8) }
        try scratch.send(through: send)
        return tooLong
    }
}
