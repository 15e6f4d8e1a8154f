import EvServer

/// Runs a `StreamService` as a blocking handler (sync, thread and pool modes): reads what is available,
/// writes the replies, until the service closes or the input ends; an endless service writes until the
/// client goes away.
final class ServiceRequestHandler<Service: StreamService>: StreamRequestHandler {
    func handle(_ request: StreamRequest) throws {
        let service = Service()
        // A local function, not a closure value: passed only to non-escaping parameters, it needs no context.
        func send(_ bytes: UnsafeRawBufferPointer) throws { _ = try request.write(bytes: bytes) }
        if try service.opened(maximumLineLength: request.maximumLineLength, send: send) { return }
        if let output = Service.endlessOutput {
            do {
                while true { try request.write(output) }
            } catch let error as ConnectionError where error.code == .peerClosed {
                return  // the client going away is how the stream ends
            }
        }
        // Lent bytes, not an array per read: no allocation per request.
        while try request.read(upTo: 64 * 1024, lending: { bytes in
            try !bytes.isEmpty && !service.received(bytes, send: send)
        }) {}
    }
}
