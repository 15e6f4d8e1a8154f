import EvServer

/// Upper-cases ASCII letters; other bytes pass through unchanged.
func uppercasedASCII(_ byte: UInt8) -> UInt8 {
    (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) ? byte - 32 : byte
}

/// What a client whose line is longer than the server's `maximumLineLength` gets before the server closes.
func lineTooLongReply(_ limit: Int) -> String {
    "ERROR line longer than \(limit) bytes\r\n"
}

/// Each line back upper-cased, event-driven. Upper-casing works byte by byte, so bytes are sent as they
/// arrive, without waiting for the end of the line: the output is the same and memory stays bounded. A line
/// longer than `maximumLineLength` gets the error line, and the connection closes.
final class UpperEventHandler: StreamEventHandler {
    private var scratch: [UInt8] = []
    private var lineLength = 0

    func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) {
        let limit = connection.server.configuration.maximumLineLength
        scratch.removeAll(keepingCapacity: true)
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                lineLength = 0
            } else {
                lineLength += 1
                if lineLength > limit {
                    connection.write(scratch)
                    connection.write("\r\n" + lineTooLongReply(limit))
                    connection.close()
                    return
                }
            }
            scratch.append(uppercasedASCII(byte))
        }
        connection.write(scratch)
    }
}

/// Each line back upper-cased, blocking, the socketserver way: read a line, write it back. A line longer
/// than `maximumLineLength` gets the error line, and the connection closes.
final class UpperRequestHandler: StreamRequestHandler {
    func handle(_ request: StreamRequest) throws {
        do {
            while let line = try request.readLine() {
                try request.write(line.map(uppercasedASCII))
            }
        } catch let error as ConnectionError where error.code == .lineTooLong {
            try request.write(lineTooLongReply(request.maximumLineLength))
        }
    }
}
