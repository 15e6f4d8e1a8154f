import EvServer

// The built-in services as async handlers (`--mode async`): the blocking versions' code, with `await`.

/// RFC 862 echo.
final class EchoAsyncHandler: StreamAsyncHandler {
    func handle(_ connection: AsyncConnection) async throws {
        while true {
            let bytes = try await connection.read(upTo: 64 * 1024)
            if bytes.isEmpty { return }
            try await connection.write(bytes)
        }
    }
}

/// Each line back upper-cased; a line over `maximumLineLength` gets the error line, then the close.
final class UpperAsyncHandler: StreamAsyncHandler {
    func handle(_ connection: AsyncConnection) async throws {
        do {
            for try await line in connection.lines {
                try await connection.write(line.map(uppercasedASCII))
            }
        } catch let error as ConnectionError where error.code == .lineTooLong {
            try await connection.write(lineTooLongReply(connection.maximumLineLength))
        }
    }
}

/// RFC 867: the date, then close.
final class DaytimeAsyncHandler: StreamAsyncHandler {
    func handle(_ connection: AsyncConnection) async throws {
        try await connection.write(daytimeLine())
    }
}

/// RFC 863: read and drop until the client is done.
final class DiscardAsyncHandler: StreamAsyncHandler {
    func handle(_ connection: AsyncConnection) async throws {
        while try await !connection.read(upTo: 64 * 1024).isEmpty {}
    }
}

/// RFC 864: the pattern until the client goes away; each write waits while the client is behind.
final class ChargenAsyncHandler: StreamAsyncHandler {
    func handle(_ connection: AsyncConnection) async throws {
        do {
            while true { try await connection.write(chargenPattern) }
        } catch let error as ConnectionError where error.code == .peerClosed {
            return
        }
    }
}

/// A datagram service as an async datagram handler.
final class ReplyingDatagramAsyncHandler: DatagramAsyncHandler {
    private let reply: DatagramReply
    init(_ reply: @escaping DatagramReply) { self.reply = reply }

    func handle(_ datagram: [UInt8], from client: SocketAddress, channel: DatagramChannel) async throws {
        var answer: [UInt8] = []
        if datagram.withUnsafeBytes({ reply($0, &answer) }) { channel.send(answer, to: client) }
    }
}
