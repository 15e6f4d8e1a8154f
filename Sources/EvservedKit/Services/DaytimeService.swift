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

/// RFC 867, event-driven: the date on connect, then close.
final class DaytimeEventHandler: StreamEventHandler {
    func connectionOpened(_ connection: StreamConnection) {
        connection.write(daytimeLine())
        connection.close()
    }

    func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) {}
}

/// RFC 867, blocking: the date, then the server closes the connection.
final class DaytimeRequestHandler: StreamRequestHandler {
    func handle(_ request: StreamRequest) throws {
        try request.write(daytimeLine())
    }
}
