/// RFC 862: every byte back, verbatim, as it arrives.
struct EchoService: StreamService {
    init(maximumLineLength: Int) {}

    mutating func received(_ bytes: UnsafeRawBufferPointer, send: (UnsafeRawBufferPointer) throws -> Void) rethrows -> Bool {
        try send(bytes)
        return false
    }
}
