import EvServer

/// RFC 862 echo, event-driven: every byte received is written back.
final class EchoEventHandler: StreamEventHandler {
    func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) {
        connection.write(bytes)
    }
}

/// RFC 862 echo, blocking.
final class EchoRequestHandler: StreamRequestHandler {
    func handle(_ request: StreamRequest) throws {
        while true {
            let bytes = try request.read(upTo: 64 * 1024)
            if bytes.isEmpty { return }
            try request.write(bytes)
        }
    }
}
