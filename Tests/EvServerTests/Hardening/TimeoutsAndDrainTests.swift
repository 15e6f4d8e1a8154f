import EvServer
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("timeouts and graceful shutdown")
struct TimeoutsAndDrainTests {
    @Test("a client that sends nothing is closed by the read timeout", arguments: [ExecutionMode.event, .thread])
    func readTimeout(mode: ExecutionMode) throws {
        let server = try echoServer(mode: mode) { $0.readTimeout = 0.3 }
        defer { server.close() }
        let client = try TestClient(server.localAddress)
        let start = monotonicNow()
        #expect(try client.readToEnd().isEmpty)
        #expect(monotonicNow() - start >= 0.25)
    }

    @Test("a slowloris client is closed at the maximum lifetime", arguments: [ExecutionMode.event, .thread])
    func slowlorisLifetime(mode: ExecutionMode) throws {
        let server = try echoServer(mode: mode) {
            $0.readTimeout = 5
            $0.maximumLifetime = 0.6
        }
        defer { server.close() }
        let client = try TestClient(server.localAddress)
        let start = monotonicNow()
        var closed = false
        while monotonicNow() - start < 5 {
            if (try? client.send("x")) == nil { closed = true; break }  // one byte, then pause
            var entry = pollfd(fd: client.descriptor, events: Int16(POLLIN), revents: 0)
            if poll(&entry, 1, 150) > 0, (try? client.receive())?.isEmpty ?? true { closed = true; break }
        }
        #expect(closed, "closed although it kept trickling bytes")
        #expect(monotonicNow() - start < 4)
    }

    @Test("a client that never reads its replies is closed by the server's write timeout", arguments: [ExecutionMode.event, .thread])
    func writeTimeout(mode: ExecutionMode) throws {
        let summaries = Summaries()
        let server = try makeServer(mode: mode, hooks: summaries.hooks, start: true) {
            $0.writeTimeout = 0.5
            $0.sendBufferSize = 4096
        }
        defer { server.close() }
        // Small buffers both ways from the handshake on: the client's window closes for good once a few KiB
        // are in it (no trickle of progress that would restart the timeout). The client has no send timeout
        // of its own here: it waits for room with poll and sends without blocking, so the only way out before
        // the deadline is the kernel reporting that the server ended the connection (it resets it: the
        // client's unread lines are still in the server's buffer).
        let client = try TestClient(server.localAddress, receiveBuffer: 4096)
        let line = [UInt8](repeating: 65, count: 1023) + [10]
        let deadline = monotonicNow() + 10
        var ended: CInt? = nil
        while ended == nil && monotonicNow() < deadline {
            var entry = pollfd(fd: client.descriptor, events: Int16(POLLOUT), revents: 0)
            guard poll(&entry, 1, 100) > 0 else { continue }
            if entry.revents & Int16(POLLERR | POLLHUP) != 0 {
                var code: CInt = 0
                var length = socklen_t(MemoryLayout<CInt>.size)
                getsockopt(client.descriptor, SOL_SOCKET, SO_ERROR, &code, &length)
                ended = code == 0 ? EPIPE : code
                break
            }
            let count = line.withUnsafeBytes { send(client.descriptor, $0.baseAddress, $0.count, CInt(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if count < 0 && errno != EAGAIN && errno != EINTR { ended = errno }
        }
        #expect(ended == ECONNRESET || ended == EPIPE, "the server closed the connection (errno \(ended.map(String.init) ?? "none: still open"))")
        let reasons = summaries.wait(for: 1).map(\.reason)
        #expect(reasons == [.writeTimeout], "and says it was the write timeout")
        let fresh = try TestClient(server.localAddress)
        try fresh.send("next\n")
        #expect(try fresh.readLine() == "next\n", "and goes on serving others")
    }

    @Test("graceful shutdown: no new clients at once, open ones keep being answered until the deadline", arguments: [ExecutionMode.event, .thread, .pool(threads: 2, queueLimit: 2)])
    func gracefulShutdown(mode: ExecutionMode) throws {
        let server = try echoServer(mode: mode) { _ in }
        let open = try TestClient(server.localAddress)
        try open.send("before\n")
        #expect(try open.readLine() == "before\n")
        let finished = Lock<Bool?>(nil)
        _ = PThread { finished.withLock { $0 = server.shutdownGracefully(timeout: 1.0) } }
        #expect(waitUntil(timeout: 5) { connectionRefused(server.localAddress) }, "the listener closes at once")
        try open.send("during\n")
        #expect(try open.readLine() == "during\n", "an open connection is still served while draining")
        #expect(try open.readToEnd().isEmpty, "at the deadline its input ends and it closes")
        #expect(waitUntil(timeout: 5) { finished.withLock { $0 } == false })
    }

    @Test("graceful shutdown returns at once when every connection has finished")
    func gracefulShutdownIdle() throws {
        let server = try echoServer { _ in }
        let client = try TestClient(server.localAddress)
        try client.send("x\n")
        #expect(try client.readLine() == "x\n")
        client.shutdownWrite()
        _ = try client.readToEnd()
        let start = monotonicNow()
        #expect(server.shutdownGracefully(timeout: 5))
        #expect(monotonicNow() - start < 4)
    }
}
