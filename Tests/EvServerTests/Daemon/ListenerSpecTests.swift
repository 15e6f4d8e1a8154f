import EvServer
import EvservedKit
import Testing

@Suite("--listen URLs")
struct ListenerSpecTests {
    @Test("each scheme gives its transport and address; service and mode come from the query")
    func parses() throws {
        let tcp = try ListenerSpec(parsing: "tcp://127.0.0.1:7000?service=upper&mode=pool")
        let expected = try SocketAddress(host: "127.0.0.1", port: 7000)
        #expect(tcp.transport == .stream && tcp.address == expected)
        #expect(tcp.service == .upper && tcp.mode == .pool)
        #expect(try ListenerSpec(parsing: "udp://[::1]:7").transport == .datagram)
        #expect(try ListenerSpec(parsing: "unix:///tmp/x.sock").address.unixPath == "/tmp/x.sock")
        #expect(try ListenerSpec(parsing: "unixgram:///tmp/x.dgram").transport == .datagram)
    }

    @Test("an IP scheme never takes a Unix path (found by the fuzzer: tcp://./x was a Unix socket)", arguments: ["tcp://./x", "udp://.", "tcp:///tmp/x"])
    func ipSchemesRefusePaths(text: String) {
        #expect(throws: ListenerSpecError.self) { try ListenerSpec(parsing: text) }
    }

    @Test("printed URLs parse back to the same listener")
    func roundTrip() throws {
        for text in ["tcp://127.0.0.1:1", "udp://[::]:0", "unix:///tmp/a", "unixgram:///tmp/b"] {
            let spec = try ListenerSpec(parsing: text)
            #expect(ListenerSpec.url(for: spec.address, transport: spec.transport) == text)
        }
    }
}
