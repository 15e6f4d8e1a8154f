import EvServer
import Logging
import ServiceLifecycle
import Testing

/// Servers as swift-service-lifecycle `Service`s: run in a `ServiceGroup`, stopped by its graceful shutdown
/// (open connections finish) or by cancellation (closed at once).
@Suite("swift-service-lifecycle")
struct ServiceLifecycleTests {
    @Test("a group's graceful shutdown drains the server: an open connection finishes, then run() returns",
          .timeLimit(.minutes(1)))
    func gracefulShutdown() async throws {
        // Started first: the blocking test client below must not wait for the group's task to start it.
        let server = try makeServer(mode: .thread, start: true) { $0.gracefulShutdownTimeout = 5 }
        let group = ServiceGroup(services: [server], logger: Logger(label: "test"))
        let running = Task { try await group.run() }
        let client = try TestClient(server.localAddress)
        try client.send("before\n")
        #expect(try client.readLine() == "before\n")
        await group.triggerGracefulShutdown()
        // The open connection is still served during the drain, then ends when its client does.
        try client.send("during\n")
        #expect(try client.readLine() == "during\n")
        client.shutdownWrite()
        try await running.value
        #expect(connectionRefused(server.localAddress), "closed once run() returned")
    }

    @Test("cancelling the task that runs the server closes it at once", .timeLimit(.minutes(1)))
    func cancellation() async throws {
        let server = try makeServer(mode: .event, start: true)
        let running = Task { try await server.run() }
        let client = try TestClient(server.localAddress)
        try client.send("served\n")
        #expect(try client.readLine() == "served\n")
        running.cancel()
        try await running.value
        #expect(connectionRefused(server.localAddress))
    }
}
