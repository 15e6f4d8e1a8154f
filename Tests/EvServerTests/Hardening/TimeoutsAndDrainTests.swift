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

    @Test("a client that never reads its replies is closed by the write timeout", arguments: [ExecutionMode.event, .thread])
    func writeTimeout(mode: ExecutionMode) throws {
        let server = try echoServer(mode: mode) { $0.writeTimeout = 0.5 }
        defer { server.close() }
        let client = try TestClient(server.localAddress, timeout: 0.2)
        var size: CInt = 4096
        setsockopt(client.descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<CInt>.size))
        let line = [UInt8](repeating: 65, count: 1023) + [10]
        let start = monotonicNow()
        var refused = false
        while monotonicNow() - start < 10 {
            // Sending fails (times out or resets) once the server stopped reading and then closed.
            if (try? client.send(line)) == nil {
                refused = true
                break
            }
        }
        #expect(refused)
        #expect(waitUntil(timeout: 5) { server.localAddress.port != nil && (try? TestClient(server.localAddress)) != nil })
    }

    @Test("graceful shutdown: no new clients at once, open ones keep being answered until the deadline", arguments: [ExecutionMode.event, .thread, .pool(threads: 2, queueLimit: 2)])
    func gracefulShutdown(mode: ExecutionMode) throws {
        let server = try echoServer(mode: mode) { _ in }
        let open = try TestClient(server.localAddress)
        try open.send("before\n")
        #expect(try open.readLine() == "before\n")
        let finished = Mutex<Bool?>(nil)
        _ = PThread { finished.withLock { $0 = server.shutdownGracefully(timeout: 1.0) } }
        #expect(waitUntil(timeout: 5) { (try? TestClient(server.localAddress)) == nil }, "the listener closes at once")
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
