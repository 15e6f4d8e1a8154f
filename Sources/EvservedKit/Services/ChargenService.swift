import EvServer

/// RFC 864's pattern: 95 lines of 72 printable characters (each starting one character later), CRLF-ended.
/// Sending it over and over gives the endless stream.
let chargenPattern: [UInt8] = {
    let printable = Array(UInt8(32)...UInt8(126))
    var pattern: [UInt8] = []
    for start in printable.indices {
        for offset in 0..<72 { pattern.append(printable[(start + offset) % printable.count]) }
        pattern.append(contentsOf: [13, 10])
    }
    return pattern
}()

/// RFC 864: the pattern over and over, as fast as the client takes it, until it goes away; input is
/// ignored.
final class ChargenService: StreamService, StreamEventHandler, Sendable {
    init() {}
    static var endlessOutput: [UInt8]? { chargenPattern }
}
