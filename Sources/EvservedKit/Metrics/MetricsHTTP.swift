/// The few lines of HTTP/1.0 and HTTP/1.1 evserved's metrics endpoint speaks: `GET /metrics` (or `HEAD`)
/// is answered 200 with the metrics text, any other path 404, another method 405, anything else that is
/// not a request line 400. Every answer closes the connection (`Connection: close`).
public enum MetricsHTTP {
    /// The most bytes a request's head may have before the answer is 400.
    public static let longestHead = 8 * 1024

    /// Where the request's head ends (after its blank line), or `nil` while it has not ended.
    public static func headLength(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 2 else { return nil }
        for index in 1..<bytes.count where bytes[index] == UInt8(ascii: "\n") {
            if bytes[index - 1] == UInt8(ascii: "\n") { return index + 1 }
            if index >= 3, bytes[index - 1] == UInt8(ascii: "\r"), bytes[index - 2] == UInt8(ascii: "\n") {
                return index + 1
            }
        }
        return nil
    }

    /// The answer to a request whose head is `head` (`nil`: it never completed); `body` makes the metrics.
    public static func response(to head: [UInt8]?, body: () -> [UInt8]) -> [UInt8] {
        guard let head, let requestLine = head.split(separator: UInt8(ascii: "\n")).first else {
            return answer(400, "Bad Request", text: "bad request\n")
        }
        let parts = String(decoding: requestLine, as: UTF8.self)
            .trimmingSuffix("\r").split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[2] == "HTTP/1.0" || parts[2] == "HTTP/1.1", parts[1].hasPrefix("/") else {
            return answer(400, "Bad Request", text: "bad request: expected 'GET /metrics HTTP/1.1'\n")
        }
        let path = parts[1].split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]
        guard path == "/metrics" else { return answer(404, "Not Found", text: "not found: try /metrics\n") }
        guard parts[0] == "GET" || parts[0] == "HEAD" else {
            let allow = "Allow: GET, HEAD\r\n"
            return answer(405, "Method Not Allowed", text: "method not allowed: use GET\n", extra: allow)
        }
        return answer(
            200, "OK", body: body(), type: "text/plain; version=0.0.4; charset=utf-8", headOnly: parts[0] == "HEAD"
        )
    }

    private static func answer(_ status: Int, _ phrase: String, text: String, extra: String = "") -> [UInt8] {
        answer(status, phrase, body: Array(text.utf8), type: "text/plain; charset=utf-8", extra: extra)
    }

    private static func answer(
        _ status: Int, _ phrase: String, body: [UInt8], type: String, extra: String = "", headOnly: Bool = false
    ) -> [UInt8] {
        let head = """
            HTTP/1.1 \(status) \(phrase)\r
            Content-Type: \(type)\r
            Content-Length: \(body.count)\r
            Connection: close\r
            \(extra)\r

            """
        return Array(head.utf8) + (headOnly ? [] : body)
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
