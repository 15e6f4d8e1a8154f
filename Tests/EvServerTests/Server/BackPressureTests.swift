import EvServer
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("back-pressure")
struct BackPressureTests {
    @Test("a full pool stops accepting and resumes when a worker frees; every client is served")
    func poolStopsAcceptingWhenFull() throws {
        let gate = Mutex(false)
        let accepted = Counter()
        final class Gated: StreamRequestHandler {
            let gate: @Sendable () -> Bool
            init(gate: @escaping @Sendable () -> Bool) { self.gate = gate }
            func handle(_ request: StreamRequest) throws {
                while !gate() { usleep(1000) }
                try request.write("served\n")
            }
        }
        let server = try StreamServer(
            configuration: ServerConfiguration(
                address: try SocketAddress(host: "127.0.0.1", port: 0), mode: .pool(threads: 1, queueLimit: 1)
            ),
            handler: .blocking { Gated(gate: { gate.withLock { $0 } }) },
            hooks: ServerHooks(verifyRequest: { _ in accepted.increment(); return true })
        )
        try server.start()
        let clients = try (0..<5).map { _ in try TestClient(server.localAddress) }
        #expect(waitUntil(timeout: 5) { accepted.count >= 2 })
        usleep(100_000)  // time for a wrongly accepted third client to show
        #expect(accepted.count == 2, "one running + one queued; the rest wait in the kernel backlog")
        gate.withLock { $0 = true }
        for client in clients { #expect(try client.readLine() == "served\n") }
        #expect(accepted.count == 5)
        server.close()
    }

    @Test("event mode: a client that does not read pauses reading, and loses nothing")
    func eventWriteBackPressure() throws {
        final class Echo: StreamEventHandler {
            func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) {
                connection.write(bytes)
                EventBackPressureProbe.shared.record(connection.bufferedByteCount)
            }
        }
        var configuration = ServerConfiguration(address: try SocketAddress(host: "127.0.0.1", port: 0))
        configuration.writeBufferHighWaterMark = 256 * 1024
        configuration.writeBufferLowWaterMark = 64 * 1024
        let server = try StreamServer(configuration: configuration, handler: .event { Echo() })
        try server.start()
        let client = try TestClient(server.localAddress, timeout: 0.5)
        // Send far more than the kernel buffers plus the high water mark hold, without reading.
        let chunk = [UInt8](repeating: 7, count: 64 * 1024)
        var sent = 0
        while sent < 64 * 1024 * 1024 {
            let count = chunk.withUnsafeBytes { send(client.descriptor, $0.baseAddress, $0.count, CInt(MSG_NOSIGNAL)) }
            if count <= 0 { break }  // timed out: the server stopped reading
            sent += count
        }
        #expect(sent < 64 * 1024 * 1024, "the server stopped reading from a client that does not read")
        #expect(EventBackPressureProbe.shared.maximum <= 256 * 1024 + 64 * 1024, "the queue stays near the high water mark")
        // Now read everything back, while sending nothing more; then half-close and expect the rest.
        client.shutdownWrite()
        var received = 0
        while true {
            let bytes = try client.receive()
            if bytes.isEmpty { break }
            received += bytes.count
        }
        #expect(received == sent)
        server.close()
    }

    @Test("Unix socket files: a stale one is replaced, a live one is refused, other files are untouched")
    func unixSocketFiles() throws {
        let path = temporarySocketPath()
        let address = try SocketAddress(unixPath: path)
        let first = try StreamServer(configuration: ServerConfiguration(address: address), handler: lineEchoHandler(for: .event))
        let error = #expect(throws: ServerError.self) {
            try StreamServer(configuration: ServerConfiguration(address: address), handler: lineEchoHandler(for: .event))
        }
        #expect(error?.code == .addressInUse)
        #expect(access(path, F_OK) == 0, "the live server's file stays")
        first.close()
        #expect(access(path, F_OK) != 0)

        // A stale socket file (bound, nobody listening) is replaced.
        let stale = socket(AF_UNIX, CInt(SOCK_STREAM.rawValue), 0)
        var unixAddress = sockaddr_un()
        unixAddress.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &unixAddress.sun_path) { buffer in
            for (index, byte) in path.utf8.enumerated() { buffer[index] = byte }
        }
        let bound = withUnsafePointer(to: &unixAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(stale, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        close(stale)
        let second = try StreamServer(configuration: ServerConfiguration(address: address), handler: lineEchoHandler(for: .event))
        second.close()

        // A regular file is never removed.
        let file = open(path, O_CREAT | O_WRONLY, 0o600)
        close(file)
        #expect(throws: ServerError.self) {
            try StreamServer(configuration: ServerConfiguration(address: address), handler: lineEchoHandler(for: .event))
        }
        #expect(access(path, F_OK) == 0)
        unlink(path)
    }
}

/// Records the largest write queue seen by the back-pressure test's handler.
final class EventBackPressureProbe: Sendable {
    static let shared = EventBackPressureProbe()
    private let value = Mutex(0)
    func record(_ buffered: Int) { value.withLock { $0 = max($0, buffered) } }
    var maximum: Int { value.withLock { $0 } }
}
