import EvServer

#if canImport(Glibc)
import Glibc
#endif

/// RFC 867 daytime text: `Monday, November 23, 2026 16:42:07-UTC` and CRLF, in local time.
func daytimeLine() -> String {
    var now = time(nil)
    var parts = tm()
    localtime_r(&now, &parts)
    var text = [CChar](repeating: 0, count: 128)
    let count = strftime(&text, text.count, "%A, %B %d, %Y %H:%M:%S-%Z", &parts)
    return String(decoding: text[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self) + "\r\n"
}

/// RFC 867: one line with the date and time on connect, then close; input is ignored.
final class DaytimeService: StreamService, StreamEventHandler, Sendable {
    static var speaksFirst: Bool { true }

    init() {}

    func opened(maximumLineLength: Int, send: (UnsafeRawBufferPointer) throws -> Void) rethrows -> Bool {
        try Array(daytimeLine().utf8).send(through: send)
        return true
    }
}
