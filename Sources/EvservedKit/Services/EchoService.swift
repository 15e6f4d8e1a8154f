import EvServer

/// RFC 862: every byte back, verbatim, as it arrives.
final class EchoService: StreamService, StreamEventHandler, Sendable {
    init() {}

    func received(_ bytes: UnsafeRawBufferPointer, send: (UnsafeRawBufferPointer) throws -> Void) rethrows -> Bool {
        try send(bytes)
        return false
    }
}
