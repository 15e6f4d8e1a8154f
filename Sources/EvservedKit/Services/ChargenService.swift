import EvServer

/// RFC 864's pattern: 95 lines of 72 printable characters (each starting one character later), CRLF-ended.
/// Sending it over and over gives the endless stream.
let chargenPattern: [UInt8] = {
    let printable = Array(UInt8(32)...UInt8(126))
    var pattern: [UInt8] = []
    for start in printable.indices {
        for offset in 0..<72 { pattern.append(printable[(start + offset) % printable.count]) }
        pattern.append(contentsOf: [13, 10])
    }
    return pattern
}()

/// RFC 864, event-driven: writes while the connection is writable, continues when it drains; input is
/// ignored. Stops when the client closes.
final class ChargenEventHandler: StreamEventHandler {
    func connectionOpened(_ connection: StreamConnection) { produce(connection) }
    func connectionWritable(_ connection: StreamConnection) { produce(connection) }
    func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) {}

    private func produce(_ connection: StreamConnection) {
        while connection.isWritable { connection.write(chargenPattern) }
    }
}

/// RFC 864, blocking: writes until the client goes away (which ends the stream normally, not as an error).
final class ChargenRequestHandler: StreamRequestHandler {
    func handle(_ request: StreamRequest) throws {
        do {
            while true { try request.write(chargenPattern) }
        } catch let error as ConnectionError where error.code == .peerClosed {
            return
        }
    }
}
