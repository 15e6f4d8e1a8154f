import EvServer

/// Upper-cases ASCII letters; other bytes pass through unchanged.
func uppercasedASCII(_ byte: UInt8) -> UInt8 {
    (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) ? byte - 32 : byte
}

/// Each line back upper-cased, event-driven. Upper-casing works byte by byte, so bytes are sent as they
/// arrive, without waiting for the end of the line: the output is the same and memory stays bounded.
final class UpperEventHandler: StreamEventHandler {
    private var scratch: [UInt8] = []

    func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) {
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: bytes.lazy.map(uppercasedASCII))
        connection.write(scratch)
    }
}

/// Each line back upper-cased, blocking, the socketserver way: read a line, write it back.
final class UpperRequestHandler: StreamRequestHandler {
    func handle(_ request: StreamRequest) throws {
        while let line = try request.readLine() {
            try request.write(line.map(uppercasedASCII))
        }
    }
}
