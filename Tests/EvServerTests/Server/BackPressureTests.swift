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
        let gate = Gate()
        let accepted = Counter()
        let ticks = LoopTicks()
        final class Gated: StreamRequestHandler {
            let gate: Gate
            init(_ gate: Gate) { self.gate = gate }
            func handle(_ request: StreamRequest) throws {
                try gate.wait()
                try request.write("served\n")
            }
        }
        var hooks = ticks.hooks
        hooks.verifyRequest = { _ in accepted.increment(); return true }
        let server = try makeServer(
            mode: .pool(threads: 1, queueLimit: 1), handler: .blocking { Gated(gate) }, hooks: hooks, start: true
        ) { $0.serviceActionsInterval = LoopTicks.interval }
        defer { server.close() }
        let clients = try (0..<5).map { _ in try TestClient(server.localAddress) }
        #expect(waitUntil(timeout: 5) { accepted.count >= 2 })
        // The five connections are complete (connect returned): a loop that would accept a third has had
        // its chance once it has come round a few times.
        #expect(ticks.waitForTicks())
        #expect(accepted.count == 2, "one running + one queued; the rest wait in the kernel backlog")
        gate.open()
        for client in clients { #expect(try client.readLine() == "served\n") }
        #expect(accepted.count == 5)
        #expect(!gate.expired)
    }

    @Test("event mode: a client that does not read pauses reading, and loses nothing")
    func eventWriteBackPressure() throws {
        final class Echo: StreamEventHandler {
            func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) {
                connection.write(bytes)
                EventBackPressureProbe.shared.record(connection.bufferedByteCount)
            }
        }
        let server = try makeServer(handler: .event { Echo() }, start: true) {
            $0.writeBufferHighWaterMark = 256 * 1024
            $0.writeBufferLowWaterMark = 64 * 1024
        }
        defer { server.close() }
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
    }

    @Test("Unix socket files: a stale one is replaced, a live one is refused, other files are untouched")
    func unixSocketFiles() throws {
        let path = temporarySocketPath()
        let address = try SocketAddress(unixPath: path)
        let first = try StreamServer(configuration: ServerConfiguration(address: address), handler: echoHandler(for: .event))
        let error = #expect(throws: ServerError.self) {
            try StreamServer(configuration: ServerConfiguration(address: address), handler: echoHandler(for: .event))
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
        let second = try StreamServer(configuration: ServerConfiguration(address: address), handler: echoHandler(for: .event))
        second.close()

        // A regular file is never removed.
        let file = open(path, O_CREAT | O_WRONLY, 0o600)
        close(file)
        #expect(throws: ServerError.self) {
            try StreamServer(configuration: ServerConfiguration(address: address), handler: echoHandler(for: .event))
        }
        #expect(access(path, F_OK) == 0)
        unlink(path)
    }
}

/// Records the largest write queue seen by the back-pressure test's handler.
final class EventBackPressureProbe: Sendable {
    static let shared = EventBackPressureProbe()
    private let value = Lock(0)
    func record(_ buffered: Int) { value.withLock { $0 = max($0, buffered) } }
    var maximum: Int { value.withLock { $0 } }
}
