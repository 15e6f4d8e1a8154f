import EvservedKit
import Testing

@Suite("metrics endpoint HTTP")
struct MetricsHTTPTests {
    private func status(_ request: String) -> String {
        let bytes = Array(request.utf8)
        let head = MetricsHTTP.headLength(bytes).map { Array(bytes[..<$0]) }
        let response = String(decoding: MetricsHTTP.response(to: head) { Array("m 1\n".utf8) }, as: UTF8.self)
        return String(response.split(separator: "\r\n").first ?? "")
    }

    @Test("GET /metrics in HTTP/1.0 and 1.1, with LF or CRLF; other paths, methods and garbage")
    func answers() {
        #expect(status("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n") == "HTTP/1.1 200 OK")
        #expect(status("GET /metrics?x=1 HTTP/1.0\n\n") == "HTTP/1.1 200 OK")
        #expect(status("GET / HTTP/1.1\r\n\r\n") == "HTTP/1.1 404 Not Found")
        #expect(status("DELETE /metrics HTTP/1.1\r\n\r\n") == "HTTP/1.1 405 Method Not Allowed")
        #expect(status("GET /metrics HTTP/2\r\n\r\n") == "HTTP/1.1 400 Bad Request")
        #expect(status("GET /metrics\r\n\r\n") == "HTTP/1.1 400 Bad Request")
        #expect(status("GET /metrics HTTP/1.1\r\n") == "HTTP/1.1 400 Bad Request", "no end of head")
    }

    @Test("the 200 answer carries the body and its length, and closes")
    func body() {
        let head = Array("GET /metrics HTTP/1.1\r\n\r\n".utf8)
        let text = String(decoding: MetricsHTTP.response(to: head) { Array("m 1\n".utf8) }, as: UTF8.self)
        #expect(text.hasSuffix("\r\n\r\nm 1\n"))
        #expect(text.contains("Content-Length: 4\r\n") && text.contains("Connection: close\r\n"))
    }
}
