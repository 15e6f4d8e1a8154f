import EvServer
import EvservedKit
import Foundation
import Logging
import Synchronization
import Testing

@Suite("JSON log lines")
struct JSONLogHandlerTests {
    /// Logs one message through a `JSONLogHandler` and parses the line it wrote.
    private func logged(_ message: String, metadata: Logger.Metadata = [:]) throws -> [String: Any] {
        let lines = Lock<[String]>([])
        let handler = JSONLogHandler(label: "test", output: { line in lines.withLock { $0.append(line) } })
        var logger = Logger(label: "test", factory: { _ in handler })
        logger.logLevel = .trace
        logger.info("\(message)", metadata: metadata)
        let written = lines.withLock { $0 }
        try #require(written.count == 1)
        #expect(written[0].hasSuffix("}\n") && written[0].filter { $0 == "\n" }.count == 1, "one line")
        let object = try JSONSerialization.jsonObject(with: Data(written[0].utf8))
        return try #require(object as? [String: Any])
    }

    @Test("quotes, backslashes, newlines, control characters and Unicode stay valid JSON")
    func escaping() throws {
        let message = "say \"hi\"\\ then\nnew line\r\ttab \u{1} \u{7F} ünïcödé ☃ 🦊 \u{2028}"
        let line = try logged(message)
        #expect(line["message"] as? String == message)
        #expect(line["level"] as? String == "info")
        #expect(line["label"] as? String == "test")
        #expect((line["time"] as? String)?.hasSuffix("Z") == true)
    }

    @Test("metadata becomes fields: strings, arrays, dictionaries; reserved names are prefixed")
    func metadataFields() throws {
        let line = try logged("m", metadata: [
            "peer": "127.0.0.1:1", "list": ["a", "b\"c"], "nested": ["k": "v\n"], "message": "clash",
        ])
        #expect(line["peer"] as? String == "127.0.0.1:1")
        #expect(line["list"] as? [String] == ["a", "b\"c"])
        #expect((line["nested"] as? [String: String])?["k"] == "v\n")
        #expect(line["message"] as? String == "m")
        #expect(line["metadata.message"] as? String == "clash")
    }
}
