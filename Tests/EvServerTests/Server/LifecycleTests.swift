import EvServer
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("lifecycle")
struct LifecycleTests {
    @Test("shutdown from inside a handler does not deadlock", arguments: allModes)
    func shutdownFromHandler(mode: ExecutionMode) throws {
        final class Stopping: StreamRequestHandler {
            func handle(_ request: StreamRequest) throws {
                request.server.shutdown()
                try request.write("bye\n")
            }
        }
        final class StoppingEvent: StreamEventHandler {
            func connectionOpened(_ connection: StreamConnection) {
                connection.server.shutdown()
                connection.write("bye\n")
                connection.close()
            }
            func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) {}
        }
        final class StoppingAsync: StreamAsyncHandler {
            func handle(_ connection: AsyncConnection) async throws {
                connection.server.shutdown()
                try await connection.write("bye\n")
            }
        }
        let handler = handler(for: mode, event: { StoppingEvent() }, blocking: { Stopping() }, async: { StoppingAsync() })
        let server = try makeServer(mode: mode, handler: handler)
        let serving = ServingThread(server)
        let client = try TestClient(server.localAddress)
        #expect(try client.readLine() == "bye\n")
        #expect(serving.join(timeout: 5), "serveForever returned")
        server.close()
    }

    @Test("close from inside a handler does not deadlock", arguments: allModes)
    func closeFromHandler(mode: ExecutionMode) throws {
        final class Closing: StreamRequestHandler {
            func handle(_ request: StreamRequest) throws {
                try request.write("bye\n")
                request.server.close()
            }
        }
        final class ClosingEvent: StreamEventHandler {
            func connectionOpened(_ connection: StreamConnection) {
                connection.write("bye\n")
                connection.server.close()
            }
            func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) {}
        }
        final class ClosingAsync: StreamAsyncHandler {
            func handle(_ connection: AsyncConnection) async throws {
                try await connection.write("bye\n")
                connection.server.close()
            }
        }
        let handler = handler(for: mode, event: { ClosingEvent() }, blocking: { Closing() }, async: { ClosingAsync() })
        let server = try makeServer(mode: mode, handler: handler)
        let address = server.localAddress
        let serving = ServingThread(server)
        let client = try TestClient(address)
        #expect(try client.readLine() == "bye\n")
        #expect(try client.readToEnd().isEmpty)
        #expect(serving.join(timeout: 5), "serveForever returned")
        // serveForever returns once the helper's shutdown is done; the listener closes right after.
        #expect(waitUntil(timeout: 5) { connectionRefused(address) }, "the listener is closed")
    }

    @Test("shutdown before serveForever makes it return at once")
    func shutdownBeforeServing() throws {
        let server = try makeServer()
        server.shutdown()
        try server.serveForever()
        server.close()
    }

    @Test("serving twice at once is refused")
    func alreadyServing() throws {
        let server = try makeServer()
        try server.start()
        let error = #expect(throws: ServerError.self) { try server.serveForever() }
        #expect(error?.code == .alreadyServing)
        server.close()
    }

    @Test("thread mode: a thread per open connection, idle threads reused, then reaped")
    func threadsReaped() throws {
        // Each handler notes its thread's kernel id; a reaped thread leaves /proc/self/task. (Counting all
        // threads would mix in the other tests running in parallel.)
        final class Noting: StreamRequestHandler {
            let threads: Record
            init(_ threads: Record) { self.threads = threads }
            func handle(_ request: StreamRequest) throws {
                threads.add("\(currentThreadID())")
                while let line = try request.readLine() { try request.write(line) }
            }
        }
        let threads = Record()
        let server = try makeServer(mode: .thread, handler: .blocking { Noting(threads) }, start: true)
        defer { server.close() }
        // 20 connections open at once: 20 threads.
        let open = try (0..<20).map { _ in try TestClient(server.localAddress) }
        for client in open {
            try client.send("x\n")
            #expect(try client.readLine() == "x\n")
        }
        #expect(Set(threads.all).count == 20, "a thread per open connection")
        for client in open {
            client.shutdownWrite()
            #expect(client.ending().ending == TestClient.Ending.endOfStream)
        }
        // 20 more, one after another: served by the threads that went idle, not 20 new ones.
        for _ in 0..<20 {
            let client = try TestClient(server.localAddress)
            try client.send("x\n")
            #expect(try client.readLine() == "x\n")
            client.shutdownWrite()
            #expect(client.ending().ending == TestClient.Ending.endOfStream)
        }
        let ids = threads.all.map { Int($0)! }
        #expect(ids.count == 40)
        #expect(Set(ids).count < 40, "idle threads reused")
        // Idle threads end after `WorkerThreads.idleLinger` (2 s).
        #expect(waitUntil(timeout: 10) { ids.allSatisfy { !threadExists($0) } },
                "threads still alive: \(Set(ids).filter(threadExists).count) of \(Set(ids).count)")
    }

    @Test("close wakes blocking handlers stuck in a read", arguments: [ExecutionMode.sync, .thread, .pool(threads: 1, queueLimit: 1)])
    func closeWakesBlockedHandlers(mode: ExecutionMode) throws {
        final class ReadsALine: StreamRequestHandler {
            let reading: Gate
            init(_ reading: Gate) { self.reading = reading }
            func handle(_ request: StreamRequest) throws {
                reading.open()
                _ = try request.readLine()
            }
        }
        let reading = Gate()
        let server = try makeServer(mode: mode, handler: .blocking { ReadsALine(reading) }, start: true)
        let client = try TestClient(server.localAddress)  // never ends its line: the handler blocks in readLine
        try client.send("partial")
        try reading.wait()
        server.close()
        #expect(client.ending().ending == .endOfStream)
    }

    @Test("a 16 MiB + 1 byte write from a blocking handler arrives whole, signals or not")
    func largeBlockingWrite() throws {
        let size = 16 * 1024 * 1024 + 1
        /// The handler's thread while it writes: signals go to that thread alone (pthread_kill), never to the
        /// process, so the other tests running meanwhile see no EINTR. Held under the lock while signalled, so
        /// the thread cannot end between the check and the signal.
        final class Target: Sendable {
            let thread = Lock<pthread_t?>(nil)
        }
        let target = Target()
        final class Big: StreamRequestHandler {
            let size: Int
            let target: Target
            init(size: Int, target: Target) { self.size = size; self.target = target }
            func handle(_ request: StreamRequest) throws {
                #expect(try request.write("write data\n") == 11)
                #expect(try request.readLine() == Array("client response\n".utf8))
                // Threads started from the test's (dispatch) threads inherit a mask that blocks SIGUSR1, and a
                // blocked signal interrupts nothing: let this one thread receive it while it writes.
                var usr1 = sigset_t()
                sigemptyset(&usr1)
                sigaddset(&usr1, SIGUSR1)
                var previous = sigset_t()
                pthread_sigmask(SIG_UNBLOCK, &usr1, &previous)
                target.thread.withLock { $0 = pthread_self() }
                defer {
                    target.thread.withLock { $0 = nil }
                    pthread_sigmask(SIG_SETMASK, &previous, nil)
                }
                #expect(try request.write([UInt8](repeating: 0, count: size)) == size)
            }
        }
        // A handler without SA_RESTART makes blocking calls fail with EINTR: they must retry, not truncate.
        // (Installed for the process, but only the handler's thread is ever sent SIGUSR1.)
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in signalsDelivered.add(1, ordering: .relaxed) }
        var previousAction = sigaction()
        sigaction(SIGUSR1, &action, &previousAction)
        defer { sigaction(SIGUSR1, &previousAction, nil) }
        let server = try makeServer(mode: .thread, handler: .blocking { Big(size: size, target: target) }, start: true)
        defer { server.close() }
        let client = try TestClient(server.localAddress)
        #expect(try client.readLine() == "write data\n")
        try client.send("client response\n")
        let deliveredBefore = signalsDelivered.load(ordering: .relaxed)
        var received = 0
        var signals = 0
        while true {
            let chunk = try client.receive()
            if chunk.isEmpty { break }
            #expect(chunk.allSatisfy { $0 == 0 })
            received += chunk.count
            if signals < 200 {
                target.thread.withLock { thread in
                    if let thread, pthread_kill(thread, SIGUSR1) == 0 { signals += 1 }
                }
            }
        }
        #expect(received == size)
        #expect(signals > 0, "the handler was signalled while it wrote")
        // Signals sent while one is pending merge into one: at least one was delivered.
        #expect(waitUntil(timeout: 5) { signalsDelivered.load(ordering: .relaxed) > deliveredBefore },
                "sent \(signals), delivered \(signalsDelivered.load(ordering: .relaxed) - deliveredBefore)")
    }

    @Test("a timeout set by the handler mid-connection applies to its next read (the socket stops waiting in the kernel)")
    func timeoutSetLater() throws {
        let outcome = Record()
        final class Reader: StreamRequestHandler {
            let outcome: Record
            init(_ outcome: Record) { self.outcome = outcome }
            func handle(_ request: StreamRequest) throws {
                _ = try request.readLine()  // no timeout yet: waits in the kernel
                try request.write("first\n")
                request.idleTimeout = 0.3
                do { _ = try request.readLine() } catch let error as ConnectionError { outcome.add("\(error.code)") }
            }
        }
        let server = try makeServer(mode: .thread, handler: .blocking { Reader(outcome) }, start: true)
        defer { server.close() }
        let client = try TestClient(server.localAddress)
        try client.send("one\n")
        #expect(try client.readLine() == "first\n")
        #expect(waitUntil(timeout: 5) { outcome.all == ["timedOut"] })
    }

    @Test("a blocking read times out with an error the handler can catch", arguments: [ExecutionMode.sync, .thread, .pool(threads: 1, queueLimit: 0)])
    func blockingIdleTimeout(mode: ExecutionMode) throws {
        final class Patient: StreamRequestHandler {
            func handle(_ request: StreamRequest) throws {
                do {
                    _ = try request.readLine()
                } catch let error as ConnectionError where error.code == .timedOut {
                    try request.write("timeout\n")
                }
            }
        }
        let server = try makeServer(mode: mode, handler: .blocking { Patient() }, start: true) { $0.idleTimeout = 0.1 }
        defer { server.close() }
        let client = try TestClient(server.localAddress)
        #expect(try client.readLine() == "timeout\n")
    }

    @Test("an idle event-mode client is closed")
    func eventIdleTimeout() throws {
        let closedByTimeout = Counter()
        final class Recording: StreamEventHandler {
            let closedByTimeout: Counter
            init(_ counter: Counter) { closedByTimeout = counter }
            func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) {
                connection.write(bytes)
            }
            func connectionClosed(_ connection: StreamConnection, error: ConnectionError?) {
                if error?.code == .timedOut { closedByTimeout.increment() }
            }
        }
        let server = try makeServer(handler: .event { Recording(closedByTimeout) }, start: true) { $0.idleTimeout = 0.1 }
        defer { server.close() }
        let client = try TestClient(server.localAddress)
        try client.send("a\n")
        #expect(try client.readLine() == "a\n")
        #expect(try client.readToEnd().isEmpty)
        // The client may see the close before the loop thread has told the handler.
        #expect(waitUntil(timeout: 5) { closedByTimeout.count == 1 })
    }
}

/// SIGUSR1 deliveries to the large-write test's handler thread.
private let signalsDelivered = Atomic<Int>(0)
