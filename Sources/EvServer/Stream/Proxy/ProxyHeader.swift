/// A PROXY protocol header, as a load balancer (HAProxy, nginx, AWS NLB, ...) sends it at the start of a
/// connection to say whom it is relaying: version 1 (a text line, `PROXY TCP4 203.0.113.7 192.0.2.1 51234
/// 443\r\n`) or version 2 (binary, starting with the signature `\r\n\r\n\0\r\nQUIT\n`).
///
/// `parse(_:)` reads one from the bytes received so far; a server configured with
/// `ServerConfiguration.proxyProtocol` does that itself before it admits a connection, and its handlers
/// see `source` as the client's address.
public struct ProxyHeader: Sendable, Hashable {
    /// The protocol version the header was written in.
    public enum Version: Sendable, Hashable {
        /// Text: `PROXY TCP4|TCP6|UNKNOWN ...\r\n`, at most 107 bytes.
        case v1
        /// Binary: the 12-byte signature, version and command, family, length, addresses and TLVs.
        case v2
    }

    /// What became of the bytes given to `parse(_:)`.
    public enum ParseResult: Sendable, Hashable {
        /// No complete header yet, and nothing wrong so far: wait for more bytes.
        case incomplete
        /// A header, taking the first `consumed` bytes; what follows is the client's data.
        case done(ProxyHeader, consumed: Int)
        /// Not a PROXY protocol header (or a broken one): why, in a sentence.
        case invalid(String)
    }

    /// Which version of the protocol the header was written in.
    public let version: Version
    /// The client's address, as the balancer saw it; `nil` when the header carries none: a version 2
    /// `LOCAL` header (the balancer's own health checks), a version 1 `PROXY UNKNOWN`, or addresses a stream
    /// server cannot use (family `UNSPEC` or Unix, or a datagram transport). Then the connection's own
    /// addresses apply.
    public let source: SocketAddress?
    /// The address the client connected to at the balancer; `nil` exactly when `source` is.
    public let destination: SocketAddress?

    /// A header relaying `source` to `destination` (both IPv4 or both IPv6), or one without addresses.
    public init(version: Version, source: SocketAddress?, destination: SocketAddress?) {
        self.version = version
        self.source = source
        self.destination = destination
    }

    /// The longest version 1 header, its `\r\n` included.
    public static let maximumV1Length = 107
    /// The longest version 2 header: 16 bytes and a length of at most 65 535 (addresses and TLVs).
    public static let maximumLength = 16 + 65535
    /// The first 12 bytes of every version 2 header.
    public static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    /// Reads a header from the start of `bytes`, either version (told apart by the first byte).
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> ParseResult {
        guard let first = bytes.first else { return .incomplete }
        switch first {
        case v2Signature[0]: return parseV2(bytes)
        case UInt8(ascii: "P"): return parseV1(bytes)
        default:
            return .invalid("not a PROXY protocol header: it starts neither with 'PROXY ' nor with the v2 signature")
        }
    }

    /// Reads a header from the start of `bytes`.
    public static func parse(_ bytes: [UInt8]) -> ParseResult {
        bytes.withUnsafeBytes { parse($0) }
    }

    /// The most bytes the header starting with `prefix` (on which `parse` found no header yet) can take:
    /// a reader may take that many without reading into the client's data.
    static func lengthBound(of prefix: [UInt8]) -> Int {
        guard prefix.count >= 16, prefix[0] == v2Signature[0] else { return maximumV1Length }
        return 16 + Int(prefix[14]) << 8 + Int(prefix[15])
    }

    /// Whether `bytes` starts as `expected` does (as far as either goes).
    static func startsLike(_ bytes: UnsafeRawBufferPointer, _ expected: [UInt8]) -> Bool {
        let count = min(bytes.count, expected.count)
        return bytes[..<count].elementsEqual(expected[..<count])
    }
}
