#if canImport(Glibc)
import Glibc
#endif

/// Version 1: `PROXY TCP4 SOURCE DESTINATION SOURCE-PORT DESTINATION-PORT\r\n` (`TCP6` for IPv6), or
/// `PROXY UNKNOWN` followed by anything up to `\r\n`; single spaces, numeric addresses, decimal ports.
extension ProxyHeader {
    private static let v1Prefix = Array("PROXY ".utf8)

    static func parseV1(_ bytes: UnsafeRawBufferPointer) -> ParseResult {
        guard startsLike(bytes, v1Prefix) else {
            return .invalid("not a PROXY protocol header: it does not start with 'PROXY '")
        }
        let searched = min(bytes.count, maximumV1Length)
        guard let newline = bytes[..<searched].firstIndex(of: UInt8(ascii: "\n")) else {
            guard bytes.count < maximumV1Length else {
                return .invalid("version 1 header without its CRLF within \(maximumV1Length) bytes")
            }
            return .incomplete
        }
        guard newline > v1Prefix.count, bytes[newline - 1] == UInt8(ascii: "\r") else {
            return .invalid("version 1 header ends with a line feed without a carriage return, or is empty")
        }
        let line = UnsafeRawBufferPointer(rebasing: bytes[v1Prefix.count..<(newline - 1)])
        return v1Fields(line).map { .done($0, consumed: newline + 1) } ?? .invalid(
            "version 1 header '\(String(decoding: bytes[..<(newline - 1)], as: UTF8.self))' is malformed: expected "
                + "PROXY TCP4|TCP6 SOURCE DESTINATION SOURCE-PORT DESTINATION-PORT, or PROXY UNKNOWN"
        )
    }

    /// The header of the line after `PROXY `, or `nil` when it is malformed.
    private static func v1Fields(_ line: UnsafeRawBufferPointer) -> ProxyHeader? {
        let fields = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        let proto = String(decoding: fields[0], as: UTF8.self)
        if proto == "UNKNOWN" { return ProxyHeader(version: .v1, source: nil, destination: nil) }
        let family: CInt
        switch proto {
        case "TCP4": family = AF_INET
        case "TCP6": family = AF_INET6
        default: return nil
        }
        guard fields.count == 5,
            let source = v1Address(fields[1], family: family, port: fields[3]),
            let destination = v1Address(fields[2], family: family, port: fields[4])
        else { return nil }
        return ProxyHeader(version: .v1, source: source, destination: destination)
    }

    /// A numeric address of `family` and a decimal port (0 to 65535, no sign or leading zero).
    private static func v1Address(
        _ host: Slice<UnsafeRawBufferPointer>, family: CInt, port: Slice<UnsafeRawBufferPointer>
    ) -> SocketAddress? {
        guard !port.isEmpty, port.count <= 5, port.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            port.first != 0x30 || port.count == 1
        else { return nil }
        let number = port.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        let hostCharacters = Set(Array("0123456789abcdefABCDEF.:".utf8))
        guard number <= 65535, host.count <= 45, host.allSatisfy(hostCharacters.contains) else { return nil }
        let text = String(decoding: host, as: UTF8.self)
        if family == AF_INET {
            var address = in_addr()
            guard inet_pton(AF_INET, text, &address) == 1 else { return nil }
            return withUnsafeBytes(of: address) { SocketAddress(ipv4: $0, port: UInt16(number)) }
        }
        var address = in6_addr()
        guard inet_pton(AF_INET6, text, &address) == 1 else { return nil }
        return withUnsafeBytes(of: address) { SocketAddress(ipv6: $0, port: UInt16(number)) }
    }
}

extension SocketAddress {
    /// An IPv4 address from its 4 bytes in network order.
    init(ipv4 bytes: UnsafeRawBufferPointer, port: UInt16) {
        storage = .ipv4(address: bytes.loadUnaligned(as: UInt32.self), port: port)
    }

    /// An IPv6 address (no interface) from its 16 bytes in network order.
    init(ipv6 bytes: UnsafeRawBufferPointer, port: UInt16) {
        var address = in6_addr()
        withUnsafeMutableBytes(of: &address) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[..<16])) }
        storage = .ipv6(address: IPv6Bytes(address), port: port, scopeID: 0)
    }
}
