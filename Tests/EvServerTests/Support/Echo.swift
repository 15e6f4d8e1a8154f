import EvServer

/// The one echo handler of the tests, in every style (it conforms to the three stream handler protocols):
/// pass it to `.event`, `.blocking` or `.async`, or let `echoHandler(for:oneLine:)` pick the style.
///
/// `oneLine: true` is socketserver's fixture handler: echo the first line, then the connection closes.
/// `oneLine: false` echoes until the client's input ends (blocking and async styles line by line, the event
/// style byte by byte as they come), then the connection closes.
final class EchoHandler: StreamEventHandler, StreamRequestHandler, StreamAsyncHandler {
    private let oneLine: Bool
    private var line: [UInt8] = []

    init(oneLine: Bool = false) { self.oneLine = oneLine }

    // Event style.
    func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) {
        guard oneLine else { return connection.write(bytes) }
        line += bytes
        if let end = line.firstIndex(of: UInt8(ascii: "\n")) {
            connection.write(Array(line[...end]))
            connection.close()
        }
    }

    // Blocking style.
    func handle(_ request: StreamRequest) throws {
        while let line = try request.readLine() {
            try request.write(line)
            if oneLine { return }
        }
    }

    // Async style.
    func handle(_ connection: AsyncConnection) async throws {
        while let line = try await connection.readLine() {
            try await connection.write(line)
            if oneLine { return }
        }
    }
}

/// The echo handler in `mode`'s style.
func echoHandler(for mode: ExecutionMode, oneLine: Bool = false) -> StreamHandler {
    handler(for: mode, event: { EchoHandler(oneLine: oneLine) }, blocking: { EchoHandler(oneLine: oneLine) },
            async: { EchoHandler(oneLine: oneLine) })
}

/// socketserver's fixture handler (echo one line, then close) in `mode`'s style.
func lineEchoHandler(for mode: ExecutionMode) -> StreamHandler { echoHandler(for: mode, oneLine: true) }

/// The datagram echo handler in every style: the datagram back to its sender.
final class DatagramEchoHandler: DatagramEventHandler, DatagramRequestHandler, DatagramAsyncHandler {
    func channel(_ channel: DatagramChannel, received datagram: UnsafeRawBufferPointer, from client: SocketAddress) {
        channel.send(datagram, to: client)
    }

    func handle(_ request: DatagramRequest) throws { try request.reply(request.datagram) }

    func handle(_ datagram: [UInt8], from client: SocketAddress, channel: DatagramChannel) async throws {
        channel.send(datagram, to: client)
    }
}

func datagramEchoHandler(for mode: ExecutionMode) -> DatagramHandler {
    datagramHandler(for: mode, event: { DatagramEchoHandler() }, blocking: { DatagramEchoHandler() }, async: { DatagramEchoHandler() })
}

/// A stream server on `address` (default `127.0.0.1:0`) in `mode`, echoing (`echoHandler(for:)`) unless
/// another handler is given; `start: true` serves it in the background.
func makeServer(
    _ address: SocketAddress? = nil, mode: ExecutionMode = .event, handler: StreamHandler? = nil,
    hooks: ServerHooks = ServerHooks(), start: Bool = false, configure: (inout ServerConfiguration) throws -> Void = { _ in }
) throws -> StreamServer {
    var configuration = ServerConfiguration(address: try address ?? loopback(), mode: mode)
    configuration.timeout = handleRequestBound
    try configure(&configuration)
    let server = try StreamServer(configuration: configuration, handler: handler ?? echoHandler(for: mode), hooks: hooks)
    if start { try server.start() }
    return server
}

/// `127.0.0.1:0` (or `[::1]:0`): a fresh port on the loopback interface.
func loopback(ipv6: Bool = false) throws -> SocketAddress {
    try SocketAddress(host: ipv6 ? "::1" : "127.0.0.1", port: 0)
}
