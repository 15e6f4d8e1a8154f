import EvServer

/// `whoami`: one line with the client's address as the server sees it (`203.0.113.7:51234` and CRLF), then
/// close; input is ignored. Behind a load balancer with the PROXY protocol it shows the address the header
/// gave, so an operator can check that the real client address gets through (and tests can).
enum WhoamiService {
    static func line(for client: SocketAddress) -> [UInt8] { Array("\(client)\r\n".utf8) }

    /// The stream handler for `mode`.
    static func handler(for mode: ExecutionMode) -> StreamHandler {
        switch mode {
        case .event: return .event { WhoamiEventHandler() }
        case .async: return .async { WhoamiAsyncHandler() }
        case .sync, .thread, .pool: return .blocking { WhoamiRequestHandler() }
        }
    }

    /// The datagram handler for `mode`: each datagram gets the line back.
    static func datagramHandler(for mode: ExecutionMode) -> DatagramHandler {
        switch mode {
        case .event: return .event { WhoamiDatagramHandler() }
        case .async: return .async { WhoamiDatagramHandler() }
        case .sync, .thread, .pool: return .blocking { WhoamiDatagramRequestHandler() }
        }
    }
}

final class WhoamiEventHandler: StreamEventHandler {
    func connectionOpened(_ connection: StreamConnection) {
        connection.write(WhoamiService.line(for: connection.clientAddress))
        connection.close()
    }

    func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) {}
}

final class WhoamiAsyncHandler: StreamAsyncHandler {
    func handle(_ connection: AsyncConnection) async throws {
        try await connection.write(WhoamiService.line(for: connection.clientAddress))
    }
}

final class WhoamiRequestHandler: StreamRequestHandler {
    func handle(_ request: StreamRequest) throws {
        _ = try request.write(WhoamiService.line(for: request.clientAddress))
    }
}

final class WhoamiDatagramHandler: DatagramEventHandler, DatagramAsyncHandler {
    func channel(_ channel: DatagramChannel, received datagram: UnsafeRawBufferPointer, from client: SocketAddress) {
        channel.send(WhoamiService.line(for: client), to: client)
    }

    func handle(_ datagram: [UInt8], from client: SocketAddress, channel: DatagramChannel) async throws {
        channel.send(WhoamiService.line(for: client), to: client)
    }
}

final class WhoamiDatagramRequestHandler: DatagramRequestHandler {
    func handle(_ request: DatagramRequest) throws {
        try request.reply(WhoamiService.line(for: request.clientAddress))
    }
}
