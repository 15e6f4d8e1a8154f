import EvServer
import EvservedKit
import Testing

@Suite("evserved flag values")
struct FlagValueTests {
    @Test("durations must be finite, in range and at most a year", arguments: ["inf", "-inf", "infinity", "nan", "-1", "-0.5", "31536000.5", "1e400", "", "10s", "0x"])
    func badDurations(text: String) {
        #expect(throws: FlagValueError.self) { try FlagValue.duration(text, flag: "--drain-timeout", allowZero: true) }
        #expect(throws: FlagValueError.self) { try FlagValue.duration(text, flag: "--idle-timeout") }
    }

    @Test("0 is a drain timeout (close at once) but not an idle timeout")
    func zero() throws {
        #expect(try FlagValue.duration("0", flag: "--drain-timeout", allowZero: true) == 0)
        #expect(throws: FlagValueError.self) { try FlagValue.duration("0", flag: "--idle-timeout") }
    }

    @Test("good durations are read as seconds, up to one year")
    func goodDurations() throws {
        #expect(try FlagValue.duration("0.25", flag: "--read-timeout") == 0.25)
        #expect(try FlagValue.duration("31536000", flag: "--max-lifetime") == 31_536_000)
    }

    @Test("the error names the flag and the value, and says what to use")
    func message() {
        let error = #expect(throws: FlagValueError.self) { try FlagValue.duration("inf", flag: "--drain-timeout", allowZero: true) }
        #expect(error?.description == "invalid --drain-timeout 'inf': not a finite number of seconds: use 0 to 31536000 (one year)")
    }

    @Test("rates must be finite and positive", arguments: ["inf", "nan", "0", "-1", "1e10", "fast"])
    func badRates(text: String) {
        #expect(throws: FlagValueError.self) { try FlagValue.rate(text, flag: "--max-connection-rate") }
    }

    @Test("whole numbers in range; overflow is refused, not trapped")
    func integers() throws {
        #expect(try FlagValue.integer("4096", flag: "--send-buffer", in: FlagValue.sendBufferRange) == 4096)
        for text in ["4095", "67108865", "-1", "99999999999999999999", "1.5", ""] {
            #expect(throws: FlagValueError.self, "\(text)") { try FlagValue.integer(text, flag: "--send-buffer", in: FlagValue.sendBufferRange) }
        }
    }

    @Test("names come from the type's cases")
    func choices() throws {
        #expect(try FlagValue.choice("pool", flag: "--mode", as: ModeName.self) == .pool)
        let error = #expect(throws: FlagValueError.self) { try FlagValue.choice("fork", flag: "--mode", as: ModeName.self) }
        #expect(error?.description.contains("event, sync, thread, pool, async") == true)
    }

    @Test("ServerConfiguration.sendBufferSize: 4096 to 64 MiB, checked before binding", arguments: [100, 4095, 64 * 1024 * 1024 + 1, -1])
    func sendBufferRange(size: Int) throws {
        var configuration = ServerConfiguration(address: try SocketAddress(host: "127.0.0.1", port: 0), mode: .thread)
        configuration.sendBufferSize = size
        let error = #expect(throws: ServerError.self) {
            try StreamServer(configuration: configuration, handler: .blocking { EchoHandler() })
        }
        #expect(error?.code == .invalidConfiguration)
    }

    @Test("ServerConfiguration.sendBufferSize in range is accepted")
    func sendBufferAccepted() throws {
        var configuration = ServerConfiguration(address: try SocketAddress(host: "127.0.0.1", port: 0), mode: .thread)
        configuration.sendBufferSize = 65_536
        let server = try StreamServer(configuration: configuration, handler: .blocking { EchoHandler() })
        server.close()
    }
}
