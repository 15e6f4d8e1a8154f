import EvServer

/// RFC 863, event-driven: input is dropped.
final class DiscardEventHandler: StreamEventHandler {
    func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) {}
}

/// RFC 863, blocking: read until the client closes.
final class DiscardRequestHandler: StreamRequestHandler {
    func handle(_ request: StreamRequest) throws {
        while try !request.read(upTo: 64 * 1024).isEmpty {}
    }
}
