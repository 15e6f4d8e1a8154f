import EvServer
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// An echo server in `mode` (`EchoHandler`), serving in the background.
func echoServer(
    _ address: SocketAddress? = nil, mode: ExecutionMode = .event, configure: (inout ServerConfiguration) throws -> Void
) throws -> StreamServer {
    try makeServer(address, mode: mode, start: true, configure: configure)
}

@Suite("limits")
struct LimitsTests {
    // Not in sync mode: it serves one connection at a time whatever the limit, so the limit has no effect to see.
    @Test("at maximumConnections the server stops accepting, and serves the next client when one closes",
          arguments: [ExecutionMode.event, .thread, .pool(threads: 4, queueLimit: 4), .async])
    func maximumConnections(mode: ExecutionMode) throws {
        let server = try echoServer(mode: mode) { $0.maximumConnections = 2 }
        defer { server.close() }
        let first = try TestClient(server.localAddress)
        let second = try TestClient(server.localAddress)
        for client in [first, second] {
            try client.send("in\n")
            #expect(try client.readLine() == "in\n")
        }
        let third = try TestClient(server.localAddress, timeout: 0.3)  // the kernel completes it: backlog
        try third.send("waiting\n")
        #expect(throws: (any Error).self, "not served while two are open") { try third.receive() }
        first.shutdownWrite()
        _ = try first.readToEnd()
        setTimeouts(third.descriptor, 10)
        #expect(try third.readLine() == "waiting\n", "served once a slot freed; nothing lost")
    }

    @Test("maximumConnectionsPerClient closes the extra connection from the same address")
    func perClientLimit() throws {
        let server = try echoServer { $0.maximumConnectionsPerClient = 1 }
        defer { server.close() }
        let first = try TestClient(server.localAddress)
        try first.send("a\n")
        #expect(try first.readLine() == "a\n")
        let second = try TestClient(server.localAddress)
        #expect(second.ending().ending == .endOfStream, "closed at once")
        try first.send("b\n")
        #expect(try first.readLine() == "b\n", "the first is untouched")
        first.shutdownWrite()
        _ = try first.readToEnd()
        #expect(waitUntil(timeout: 5) {
            guard let again = try? TestClient(server.localAddress), (try? again.send("c\n")) != nil else { return false }
            return (try? again.readLine()) == "c\n"
        }, "a slot for this address opens when its connection closes")
    }

    @Test("maximumConnectionRate paces accepting and loses no client")
    func connectionRate() throws {
        let server = try echoServer { $0.maximumConnectionRate = 10 }
        defer { server.close() }
        let start = monotonicNow()
        var clients: [TestClient] = []
        for index in 0..<25 {
            let client = try TestClient(server.localAddress)
            try client.send("\(index)\n")
            clients.append(client)
        }
        for (index, client) in clients.enumerated() { #expect(try client.readLine() == "\(index)\n") }
        // A burst of 10, then 10 a second: the last of 25 cannot be accepted before 1.5 s.
        #expect(monotonicNow() - start >= 1.4)
    }

    @Test("maximumConnectionRatePerClient closes one address's extra connections; other addresses go on")
    func connectionRatePerClient() throws {
        let server = try echoServer(try SocketAddress(host: "::", port: 0)) { $0.maximumConnectionRatePerClient = 0.5 }
        defer { server.close() }
        let port = server.localAddress.port!
        let busy = try SocketAddress(host: "127.0.0.1", port: port)
        func answered(_ address: SocketAddress) -> Bool {
            guard let client = try? TestClient(address), (try? client.send("x\n")) != nil else { return false }
            return (try? client.readLine()) == "x\n"
        }
        // 0.5 a second: a bucket of one, and the next token two seconds later. Four attempts take
        // milliseconds; only a machine stalled for two seconds could earn a second token among them.
        let start = monotonicNow()
        #expect((0..<4).map { _ in answered(busy) } == [true, false, false, false])
        #expect(answered(try SocketAddress(host: "::1", port: port)), "another address is not limited")
        #expect(waitUntil(timeout: 6) { usleep(50_000); return answered(busy) }, "the address is served again once a token is due")
        #expect(monotonicNow() - start >= 1.5, "not before its next token")
    }

    @Test("deny and allow ranges refuse clients before any handler", arguments: [false, true])
    func allowAndDeny(useDeny: Bool) throws {
        let server = try echoServer(try SocketAddress(host: "::", port: 0)) { configuration in
            if useDeny {
                configuration.deny = [try AddressRange(parsing: "127.0.0.0/8")]
            } else {
                configuration.allow = [try AddressRange(parsing: "::1/128")]
            }
        }
        defer { server.close() }
        let port = server.localAddress.port!
        let v4 = try TestClient(try SocketAddress(host: "127.0.0.1", port: port))
        #expect(v4.ending().ending == .endOfStream, "the IPv4 client (::ffff:127.0.0.1) is refused")
        let v6 = try TestClient(try SocketAddress(host: "::1", port: port))
        try v6.send("six\n")
        #expect(try v6.readLine() == "six\n")
    }

    @Test("address ranges parse, mask and match", arguments: [
        ("10.0.0.0/8", "10.255.1.2", true), ("10.0.0.0/8", "11.0.0.1", false),
        ("192.168.1.77/24", "192.168.1.1", true), ("0.0.0.0/0", "8.8.8.8", true),
        ("127.0.0.1", "127.0.0.1", true), ("127.0.0.1", "127.0.0.2", false),
        ("127.0.0.0/8", "::ffff:127.0.0.5", true), ("::1", "::1", true), ("::1", "127.0.0.1", false),
        ("2001:db8::/32", "2001:db8:ffff::1", true), ("2001:db8::/33", "2001:db8:8000::1", false),
        ("fe80::/10", "febf::1%1", true), ("fe80::/10", "fec0::1", false),
    ])
    func ranges(range: String, address: String, expected: Bool) throws {
        #expect(try AddressRange(parsing: range).contains(SocketAddress(host: address, port: 1)) == expected)
    }

    @Test("bad address ranges are refused with a message", arguments: ["10.0.0.0/33", "::/129", "10.0.0.0/", "ten/8", "10.0.0.0/x", ""])
    func badRanges(text: String) {
        #expect(throws: ServerError.self) { try AddressRange(parsing: text) }
    }

    @Test("a blocking readLine stops at maximumLineLength")
    func lineLimit() throws {
        let outcome = Record()
        final class Reader: StreamRequestHandler {
            let outcome: Record
            init(_ outcome: Record) { self.outcome = outcome }
            func handle(_ request: StreamRequest) throws {
                do { _ = try request.readLine() } catch let error as ConnectionError { outcome.add("\(error.code)") }
            }
        }
        let server = try makeServer(mode: .thread, handler: .blocking { Reader(outcome) }, start: true) {
            $0.maximumLineLength = 1000
        }
        defer { server.close() }
        let client = try TestClient(server.localAddress)
        try client.send([UInt8](repeating: 65, count: 5000))
        #expect(waitUntil(timeout: 5) { outcome.all == ["lineTooLong"] })
    }

    @Test("a blocking read(exactly:) beyond maximumInputBuffer is refused; within it, it arrives whole")
    func inputBufferLimit() throws {
        final class Reader: StreamRequestHandler {
            func handle(_ request: StreamRequest) throws {
                do {
                    _ = try request.read(exactly: 4097)
                } catch let error as ConnectionError where error.code == .inputTooLarge {
                    try request.write("refused\n")
                }
                if let bytes = try request.read(exactly: 4096) { try request.write("\(bytes.count)\n") }
            }
        }
        let server = try makeServer(mode: .thread, handler: .blocking { Reader() }, start: true) {
            $0.maximumLineLength = 1000
            $0.maximumInputBuffer = 4096
        }
        defer { server.close() }
        let client = try TestClient(server.localAddress)
        try client.send([UInt8](repeating: 66, count: 4096))
        #expect(try client.readToEnd() == Array("refused\n4096\n".utf8))
    }
}

@Suite("input buffer")
struct InputBufferTests {
    @Test("lines come out whole whatever the chunks, and the rest stays")
    func framing() throws {
        var buffer = InputBuffer(limit: 64)
        var lines: [String] = []
        for chunk in ["he", "llo\nwor", "ld\n\npar", "tial"] {
            try Array(chunk.utf8).withUnsafeBytes { try buffer.append($0) }
            while let line = try buffer.nextLine(maxLength: 16) { lines.append(String(decoding: line, as: UTF8.self)) }
        }
        #expect(lines == ["hello\n", "world\n", "\n"])
        #expect(buffer.takeAll() == Array("partial".utf8))
        #expect(buffer.isEmpty)
    }

    @Test("a line over the limit is refused, with or without its newline; the buffer refuses past its limit")
    func limits() throws {
        var buffer = InputBuffer(limit: 8)
        try Array("12345".utf8).withUnsafeBytes { try buffer.append($0) }
        #expect(throws: ConnectionError.self) { try buffer.nextLine(maxLength: 4) }
        var withNewline = InputBuffer(limit: 8)
        try Array("12345\n".utf8).withUnsafeBytes { try withNewline.append($0) }
        #expect(throws: ConnectionError.self) { try withNewline.nextLine(maxLength: 4) }
        #expect(throws: ConnectionError.self) { try Array("1234".utf8).withUnsafeBytes { try buffer.append($0) } }
        #expect(buffer.count == 5)
    }
}

@Suite("configuration checks")
struct ConfigurationCheckTests {
    static let mutations: [(String, @Sendable (inout ServerConfiguration) -> Void)] = [
        ("maximumThreads 0", { $0.maximumThreads = 0 }),
        ("maximumInputBuffer below maximumLineLength", { $0.maximumInputBuffer = $0.maximumLineLength - 1 }),
        ("maximumDatagramSize 0", { $0.maximumDatagramSize = 0 }),
        ("maximumDatagramSize over 16 MiB", { $0.maximumDatagramSize = ServerConfiguration.largestDatagramSize + 1 }),
        ("readTimeout 0", { $0.readTimeout = 0 }),
        ("writeTimeout negative", { $0.writeTimeout = -1 }),
        ("maximumLifetime 0", { $0.maximumLifetime = 0 }),
        ("maximumConnectionRate 0", { $0.maximumConnectionRate = 0 }),
        ("maximumConnectionRatePerClient negative", { $0.maximumConnectionRatePerClient = -1 }),
        ("maximumConnections 0", { $0.maximumConnections = 0 }),
        ("maximumConnectionsPerClient 0", { $0.maximumConnectionsPerClient = 0 }),
        ("maximumLineLength 0", { $0.maximumLineLength = 0 }),
    ]

    @Test("out-of-range limits are refused before binding, by both server kinds", arguments: mutations.indices)
    func refused(index: Int) throws {
        let (name, mutate) = Self.mutations[index]
        var configuration = ServerConfiguration(address: try loopback(), mode: .thread)
        mutate(&configuration)
        let stream = #expect(throws: ServerError.self, "\(name)") {
            try StreamServer(configuration: configuration, handler: .blocking { EchoHandler() })
        }
        #expect(stream?.code == .invalidConfiguration, "\(name)")
        let datagram = #expect(throws: ServerError.self, "\(name)") {
            try DatagramServer(configuration: configuration, handler: .blocking { DatagramEchoHandler() })
        }
        #expect(datagram?.code == .invalidConfiguration, "\(name)")
    }

    @Test("a datagram handler of the wrong style for the mode is refused")
    func datagramStyleMismatch() throws {
        let address = try loopback()
        let event = #expect(throws: ServerError.self) {
            try DatagramServer(configuration: ServerConfiguration(address: address, mode: .pool(threads: 1, queueLimit: 1)),
                               handler: .event { DatagramEchoHandler() })
        }
        #expect(event?.code == .invalidConfiguration)
        let blocking = #expect(throws: ServerError.self) {
            try DatagramServer(configuration: ServerConfiguration(address: address, mode: .event),
                               handler: .blocking { DatagramEchoHandler() })
        }
        #expect(blocking?.code == .invalidConfiguration)
    }
}
