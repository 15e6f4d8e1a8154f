import EvServer
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("detached connections")
struct DetachTests {
    /// The connections detached so far.
    final class Kept: Sendable {
        let list = Lock<[DetachedConnection]>([])
    }

    /// Detaches every connection and keeps it, writing `hello` on its descriptor.
    final class Detaching: StreamEventHandler {
        let kept: Kept
        let closedEvents: Counter
        init(kept: Kept, closedEvents: Counter) {
            self.kept = kept
            self.closedEvents = closedEvents
        }
        func connectionOpened(_ connection: StreamConnection) {
            guard let detached = connection.detach() else { return }
            kept.list.withLock { $0.append(detached) }
            _ = "hello".withCString { write(detached.descriptor, $0, 5) }
        }
        func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) {}
        func connectionClosed(_ connection: StreamConnection, error: ConnectionError?) { closedEvents.increment() }
    }

    @Test("a detached connection keeps its slot until released; its socket is the caller's")
    func slotHeldUntilRelease() throws {
        let kept = Kept()
        let closedEvents = Counter()
        let server = try makeServer(
            handler: .event { Detaching(kept: kept, closedEvents: closedEvents) }, start: true,
            configure: { $0.maximumConnections = 1 }
        )
        defer { server.close() }
        let first = try TestClient(server.localAddress)
        #expect(String(decoding: try first.receive(), as: UTF8.self) == "hello")
        let second = try TestClient(server.localAddress)  // waits in the backlog: the slot is still taken
        #expect(server.connectionsOpen == 1)
        let detached = try #require(kept.list.withLock { $0.first })
        #expect(detached.localAddress == server.localAddress)
        close(detached.descriptor)
        #expect(first.ending().ending == TestClient.Ending.endOfStream, "closing the descriptor ends the connection")
        #expect(server.connectionsOpen == 1, "closing the descriptor does not free the slot")
        detached.release()
        detached.release()  // only the first counts
        #expect(String(decoding: try second.receive(), as: UTF8.self) == "hello", "the freed slot serves the next")
        #expect(waitUntil { server.connectionsOpen == 1 })
        #expect(closedEvents.count == 0, "the handler of a detached connection hears nothing more")
        kept.list.withLock { for connection in $0.dropFirst() { close(connection.descriptor) } }
    }
}
