import EvServer
import Testing

@Suite("ProxyHeader")
struct ProxyHeaderTests {
    static let signature = ProxyHeader.v2Signature

    private func address(_ text: String) -> SocketAddress { try! SocketAddress(parsing: text) }

    private func done(_ result: ProxyHeader.ParseResult) -> (ProxyHeader, Int)? {
        if case .done(let header, let consumed) = result { return (header, consumed) }
        return nil
    }

    private func invalidReason(_ result: ProxyHeader.ParseResult) -> String? {
        if case .invalid(let reason) = result { return reason }
        return nil
    }

    /// A v2 header: command (0 LOCAL, 1 PROXY), family/transport byte, then the body (its length is added).
    private func v2(command: UInt8 = 1, family: UInt8, _ body: [UInt8]) -> [UInt8] {
        Self.signature + [0x20 | command, family, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
    }

    @Test("v1 TCP4 and TCP6: source and destination; bytes after the header are not consumed", arguments: [
        ("PROXY TCP4 203.0.113.7 192.0.2.1 51234 443\r\n", "203.0.113.7:51234", "192.0.2.1:443"),
        ("PROXY TCP6 2001:db8::1 ::1 1 65535\r\n", "[2001:db8::1]:1", "[::1]:65535"),
        ("PROXY TCP6 ::ffff:10.1.2.3 ::1 0 80\r\n", "[::ffff:10.1.2.3]:0", "[::1]:80"),
    ])
    func v1Addresses(line: String, source: String, destination: String) throws {
        let bytes = Array(line.utf8) + Array("GET /\r\n".utf8)
        let (header, consumed) = try #require(done(ProxyHeader.parse(bytes)))
        #expect(consumed == line.utf8.count)
        #expect(header.version == .v1)
        #expect(header.source == address(source))
        #expect(header.destination == address(destination))
    }

    @Test("v1 UNKNOWN carries no addresses, whatever follows it on the line")
    func v1Unknown() throws {
        for line in ["PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff::1 ::1 1 2\r\n"] {
            let (header, consumed) = try #require(done(ProxyHeader.parse(Array(line.utf8))))
            #expect(header.source == nil && header.destination == nil && consumed == line.utf8.count)
        }
    }

    @Test("v1 incomplete until CRLF, at any cut")
    func v1Truncated() {
        let line = Array("PROXY TCP4 203.0.113.7 192.0.2.1 51234 443\r\n".utf8)
        for cut in 0..<line.count { #expect(ProxyHeader.parse(Array(line[..<cut])) == .incomplete) }
    }

    @Test("v1 malformed headers are refused with a reason", arguments: [
        "PROXY TCP4 203.0.113.7 192.0.2.1 51234 443\n",  // LF without CR
        "PROXY TCP4 203.0.113.7 192.0.2.1 51234\r\n",  // a field missing
        "PROXY TCP4 2001:db8::1 192.0.2.1 1 2\r\n",  // IPv6 in TCP4
        "PROXY TCP6 203.0.113.7 ::1 1 2\r\n",  // IPv4 in TCP6
        "PROXY TCP4 203.0.113.7 192.0.2.1 65536 443\r\n",  // port out of range
        "PROXY TCP4 203.0.113.7 192.0.2.1 0443 443\r\n",  // leading zero
        "PROXY TCP4 203.0.113.7 192.0.2.1 -1 443\r\n",
        "PROXY TCP4  203.0.113.7 192.0.2.1 1 443\r\n",  // two spaces
        "PROXY TCP4 203.0.113.007 192.0.2.1 1 443\r\n",
        "PROXY UDP4 203.0.113.7 192.0.2.1 1 443\r\n",
        "PROXY \r\n",
        "PROXY localhost 1\r\n",
        "PROXX TCP4",
        "GET / HTTP/1.1\r\n",
        "\u{0}garbage",
    ])
    func v1Malformed(text: String) {
        #expect(invalidReason(ProxyHeader.parse(Array(text.utf8))) != nil)
    }

    @Test("v1: no CRLF within 107 bytes is too long; 107 bytes with it are fine")
    func v1TooLong() throws {
        let long = Array("PROXY UNKNOWN ".utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: 93)
        #expect(long.count == ProxyHeader.maximumV1Length)
        #expect(invalidReason(ProxyHeader.parse(long))?.contains("107") == true)
        #expect(ProxyHeader.parse(Array(long.dropLast())) == .incomplete)
        let fits = Array(long.dropLast(2)) + Array("\r\n".utf8)
        #expect(done(ProxyHeader.parse(fits))?.1 == 107)
    }

    @Test("v2 PROXY over IPv4 and IPv6, with TLVs skipped, and the client's bytes after it")
    func v2Addresses() throws {
        let tlv: [UInt8] = [0x01, 0x00, 0x02, 0x68, 0x32]  // ALPN "h2"
        let v4 = v2(family: 0x11, [203, 0, 113, 7, 192, 0, 2, 1, 0xC8, 0x22, 0x01, 0xBB] + tlv)
        let (header4, consumed4) = try #require(done(ProxyHeader.parse(v4 + Array("hello".utf8))))
        #expect(consumed4 == v4.count)
        #expect(header4 == ProxyHeader(version: .v2, source: address("203.0.113.7:51234"),
                                       destination: address("192.0.2.1:443")))
        let six = [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [1]
        let loopback = [UInt8](repeating: 0, count: 15) + [1]
        let v6 = v2(family: 0x21, six + loopback + [0, 7, 0, 9])
        let (header6, _) = try #require(done(ProxyHeader.parse(v6)))
        #expect(header6.source == address("[2001:db8::1]:7") && header6.destination == address("[::1]:9"))
    }

    @Test("v2 LOCAL (health checks), UNSPEC, Unix and datagram families carry no usable address")
    func v2WithoutAddresses() throws {
        let headers = [
            v2(command: 0, family: 0x00, []),
            v2(command: 0, family: 0x11, [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2]),  // LOCAL ignores the block
            v2(family: 0x00, []),
            v2(family: 0x31, [UInt8](repeating: 0, count: 216)),
            v2(family: 0x12, [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2]),
        ]
        for bytes in headers {
            let (header, consumed) = try #require(done(ProxyHeader.parse(bytes)))
            #expect(header.source == nil && header.destination == nil && consumed == bytes.count)
        }
    }

    @Test("v2 incomplete at every cut, including inside the signature and TLVs")
    func v2Truncated() {
        let bytes = v2(family: 0x11, [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2, 0x04, 0x00, 0x01, 0xFF])
        for cut in 0..<bytes.count { #expect(ProxyHeader.parse(Array(bytes[..<cut])) == .incomplete) }
    }

    @Test("v2 malformed headers are refused with a reason")
    func v2Malformed() {
        let block: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2]
        var wrongVersion = v2(family: 0x11, block)
        wrongVersion[12] = 0x11
        let cases: [[UInt8]] = [
            Array(Self.signature.prefix(6)) + [0x42],  // signature broken early
            wrongVersion,
            v2(command: 2, family: 0x11, block),  // unknown command
            v2(family: 0x41, block),  // unknown family
            v2(family: 0x13, block),  // unknown transport
            v2(family: 0x11, Array(block.prefix(8))),  // block too short for IPv4
            v2(family: 0x21, block),  // too short for IPv6
            v2(family: 0x11, block + [0x01, 0x00]),  // TLV cut inside its length
            v2(family: 0x11, block + [0x01, 0x00, 0x05, 0x61]),  // TLV longer than what is left
        ]
        for bytes in cases { #expect(invalidReason(ProxyHeader.parse(bytes)) != nil, "\(bytes)") }
    }

    @Test("v2 length up to 65535 is read whole")
    func v2Longest() throws {
        let block: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2]
        let exact = v2(family: 0x11, block + [0xEE, 0xFF, 0xF0] + [UInt8](repeating: 0x61, count: 65535 - 15))
        #expect(exact.count == ProxyHeader.maximumLength)
        #expect(done(ProxyHeader.parse(exact))?.1 == ProxyHeader.maximumLength)
    }

    @Test("encoded() writes what parse() reads back as the same header, in both versions")
    func roundTrip() throws {
        let pairs = [("203.0.113.7:51234", "192.0.2.1:443"), ("[2001:db8::1]:7", "[::1]:9")]
        for version in [ProxyHeader.Version.v1, .v2] {
            for (source, destination) in pairs {
                let header = ProxyHeader(version: version, source: address(source), destination: address(destination))
                #expect(done(ProxyHeader.parse(header.encoded()))?.0 == header)
            }
            let local = ProxyHeader(version: version, source: nil, destination: nil)
            #expect(done(ProxyHeader.parse(local.encoded()))?.0 == local)
        }
    }
}
