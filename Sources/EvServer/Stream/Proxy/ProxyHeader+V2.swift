/// Version 2: the 12-byte signature; version (2) and command (`LOCAL` 0, `PROXY` 1); address family
/// (`UNSPEC` 0, `INET` 1, `INET6` 2, `UNIX` 3) and transport (`UNSPEC` 0, `STREAM` 1, `DGRAM` 2); the length
/// of the rest (big-endian); the addresses and ports; then TLVs (type, 2-byte length, value), skipped.
extension ProxyHeader {
    /// The address block's size for each family: UNSPEC, INET (4 + 4 + 2 + 2), INET6, UNIX (108 + 108).
    private static let v2AddressSizes = [0, 12, 36, 216]

    static func parseV2(_ bytes: UnsafeRawBufferPointer) -> ParseResult {
        guard startsLike(bytes, v2Signature) else {
            return .invalid("not a PROXY protocol header: it starts with a carriage return but not the v2 signature")
        }
        guard bytes.count >= 16 else { return .incomplete }
        let (version, command) = (bytes[12] >> 4, bytes[12] & 0x0F)
        let (family, transport) = (Int(bytes[13] >> 4), bytes[13] & 0x0F)
        guard version == 2 else { return .invalid("version 2 signature with version \(version) (only 2 exists)") }
        guard command <= 1 else { return .invalid("version 2 header with unknown command \(command)") }
        guard family <= 3, transport <= 2 else {
            return .invalid("version 2 header with unknown address family \(family) or transport \(transport)")
        }
        let length = Int(bytes[14]) << 8 | Int(bytes[15])
        guard bytes.count >= 16 + length else { return .incomplete }
        let body = UnsafeRawBufferPointer(rebasing: bytes[16..<(16 + length)])
        if command == 0 {  // LOCAL: the balancer speaks for itself; the block is ignored
            return .done(ProxyHeader(version: .v2, source: nil, destination: nil), consumed: 16 + length)
        }
        let addressSize = v2AddressSizes[family]
        guard length >= addressSize else {
            return .invalid("version 2 header of \(length) bytes, too short for its addresses (\(addressSize))")
        }
        if let problem = tlvProblem(UnsafeRawBufferPointer(rebasing: body[addressSize...])) { return .invalid(problem) }
        let header = transport == 1 ? v2Addresses(body, family: family) : nil
        return .done(header ?? ProxyHeader(version: .v2, source: nil, destination: nil), consumed: 16 + length)
    }

    /// The TCP addresses of an INET or INET6 block; `nil` for the other families.
    private static func v2Addresses(_ block: UnsafeRawBufferPointer, family: Int) -> ProxyHeader? {
        func port(_ offset: Int) -> UInt16 { UInt16(block[offset]) << 8 | UInt16(block[offset + 1]) }
        switch family {
        case 1:
            return ProxyHeader(
                version: .v2,
                source: SocketAddress(ipv4: UnsafeRawBufferPointer(rebasing: block[0..<4]), port: port(8)),
                destination: SocketAddress(ipv4: UnsafeRawBufferPointer(rebasing: block[4..<8]), port: port(10))
            )
        case 2:
            return ProxyHeader(
                version: .v2,
                source: SocketAddress(ipv6: UnsafeRawBufferPointer(rebasing: block[0..<16]), port: port(32)),
                destination: SocketAddress(ipv6: UnsafeRawBufferPointer(rebasing: block[16..<32]), port: port(34))
            )
        default:
            return nil
        }
    }

    /// Why the TLVs after the addresses do not fill their space exactly, or `nil` when they do.
    private static func tlvProblem(_ tlvs: UnsafeRawBufferPointer) -> String? {
        var offset = 0
        while offset < tlvs.count {
            guard tlvs.count - offset >= 3 else { return "version 2 header ends inside a TLV's type and length" }
            let length = Int(tlvs[offset + 1]) << 8 | Int(tlvs[offset + 2])
            guard tlvs.count - offset - 3 >= length else {
                return "version 2 TLV of \(length) bytes runs past the end of the header"
            }
            offset += 3 + length
        }
        return nil
    }
}
