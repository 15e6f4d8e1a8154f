import EvServer
import Testing

@Suite("SocketAddress")
struct SocketAddressTests {
    @Test("parses and prints IPv4, IPv6 and Unix addresses", arguments: [
        ("127.0.0.1:7000", "127.0.0.1:7000"),
        ("[::1]:7000", "[::1]:7000"),
        ("[0:0:0:0:0:0:0:1]:80", "[::1]:80"),
        (":9", "0.0.0.0:9"),
        ("localhost:0", "127.0.0.1:0"),
        ("/tmp/x.sock", "/tmp/x.sock"),
        ("[fe80::1%lo]:7000", "[fe80::1%lo]:7000"),
        ("[fe80::1%1]:7000", "[fe80::1%lo]:7000"),
    ])
    func roundTrip(text: String, printed: String) throws {
        #expect(try SocketAddress(parsing: text).description == printed)
    }

    @Test("rejects malformed text with a message naming the problem", arguments: [
        ("127.0.0.1", "expected HOST:PORT"),
        ("127.0.0.1:65536", "out of range"),
        ("127.0.0.1:-1", "out of range"),
        ("127.0.0.1:x", "not a number"),
        ("example.com:80", "not a numeric"),
        ("::1:80", "brackets"),
        ("[::1:80", "closing ']'"),
        ("[::1]80", "expected ':PORT'"),
        ("[fe80::1]:7000", "link-local: name its interface"),
        ("[fe80::1%nosuchif0]:7000", "no network interface 'nosuchif0'"),
        ("[::1%lo]:7000", "applies only to link-local"),
    ])
    func rejects(text: String, message: String) {
        let error = #expect(throws: ServerError.self) { try SocketAddress(parsing: text) }
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "")")
    }

    @Test("a Unix path longer than sun_path is refused")
    func unixPathTooLong() {
        let path = "/tmp/" + String(repeating: "x", count: SocketAddress.maximumUnixPathLength)
        let error = #expect(throws: ServerError.self) { try SocketAddress(unixPath: path) }
        #expect(error?.code == .unixPathTooLong)
        #expect(SocketAddress.maximumUnixPathLength == 107)
    }

    @Test("a link-local address this machine does not have is refused clearly at bind")
    func linkLocalNotAvailable() throws {
        let address = try SocketAddress(parsing: "[fe80::dead:beef%lo]:0")
        let error = #expect(throws: ServerError.self) {
            _ = try DatagramServer(configuration: ServerConfiguration(address: address), handler: .event { DatagramEchoHandler() })
        }
        #expect(error?.code == .addressNotAvailable, "\(error?.message ?? "")")
    }
}
