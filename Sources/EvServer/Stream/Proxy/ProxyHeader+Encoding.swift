/// Writing a header: for clients and balancers written with the library, for tests, and for the fuzz
/// target's round trip (what `parse` reads, `encoded()` writes back to bytes `parse` reads as the same).
extension ProxyHeader {
    /// The header in its version's wire form. Without addresses (or with addresses of two families, which
    /// neither version can carry) it is `PROXY UNKNOWN\r\n` or a version 2 `LOCAL` header.
    public func encoded() -> [UInt8] {
        guard let source, let destination, let from = source.addressBytes, let to = destination.addressBytes,
            from.count == to.count
        else {
            return version == .v1 ? Array("PROXY UNKNOWN\r\n".utf8) : ProxyHeader.v2Signature + [0x20, 0x00, 0, 0]
        }
        let ports = [source.port!, destination.port!]
        switch version {
        case .v1:
            let proto = from.count == 4 ? "TCP4" : "TCP6"
            return Array("PROXY \(proto) \(source.host!) \(destination.host!) \(ports[0]) \(ports[1])\r\n".utf8)
        case .v2:
            let block = from + to + ports.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
            return ProxyHeader.v2Signature + [0x21, from.count == 4 ? 0x11 : 0x21, 0, UInt8(block.count)] + block
        }
    }
}
