#if canImport(Glibc)
import Glibc
#endif

/// A CIDR range of IP addresses, for allow and deny lists: `10.0.0.0/8`, `192.168.1.7` (one address),
/// `2001:db8::/32`, `::1`. IPv4 ranges also match IPv4 clients of a dual-stack IPv6 listener
/// (`::ffff:10.1.2.3`).
public struct AddressRange: Sendable, Hashable, CustomStringConvertible {
    /// 4 bytes for IPv4, 16 for IPv6; the bits after `prefixLength` are zero.
    private let network: [UInt8]
    /// How many leading bits of `network` an address must share to be in the range.
    public let prefixLength: Int

    /// Parses CIDR notation (`10.0.0.0/8`, `::1/128`); a bare address is a range of one.
    public init(parsing text: String) throws(ServerError) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let host = String(parts[0])
        var bytes: [UInt8]
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            bytes = withUnsafeBytes(of: v4) { Array($0) }
        } else if inet_pton(AF_INET6, host, &v6) == 1 {
            bytes = withUnsafeBytes(of: v6) { Array($0) }
        } else {
            throw ServerError(
                .invalidAddress,
                "'\(text)' is not an address range: write ADDRESS/PREFIX, as in 10.0.0.0/8 or 2001:db8::/32"
            )
        }
        let maximum = bytes.count * 8
        var prefix = maximum
        if parts.count == 2 {
            guard !parts[1].isEmpty, parts[1].allSatisfy(\.isASCII), let parsed = Int(parts[1]),
                (0...maximum).contains(parsed)
            else {
                throw ServerError(.invalidAddress, "'\(text)': the prefix length must be a number from 0 to \(maximum)")
            }
            prefix = parsed
        }
        for index in bytes.indices {
            let kept = max(0, min(8, prefix - index * 8))
            bytes[index] &= kept == 0 ? 0 : ~UInt8(0) << (8 - kept)
        }
        network = bytes
        prefixLength = prefix
    }

    /// Whether `address` is in the range; Unix addresses never are.
    public func contains(_ address: SocketAddress) -> Bool {
        guard var bytes = address.addressBytes else { return false }
        if network.count == 4, bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }),
            bytes[10] == 0xff, bytes[11] == 0xff
        {
            bytes = Array(bytes[12...])  // IPv4-mapped IPv6
        }
        guard bytes.count == network.count else { return false }
        var remaining = prefixLength
        for index in network.indices where remaining > 0 {
            let bits = min(8, remaining)
            let mask: UInt8 = ~UInt8(0) << (8 - bits)
            if bytes[index] & mask != network[index] { return false }
            remaining -= bits
        }
        return true
    }

    /// The range in CIDR notation.
    public var description: String {
        let family = network.count == 4 ? AF_INET : AF_INET6
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        _ = network.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &text, socklen_t(text.count)) }
        return text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) } + "/\(prefixLength)"
    }
}

/// A server's allow and deny lists, checked before `verifyRequest`.
struct AddressPolicy: Sendable {
    let allow: [AddressRange]
    let deny: [AddressRange]
    /// No ranges (the usual case), decided once: `admits` answers without a call or a look at the address
    /// (it runs for every connection and every datagram).
    private let admitsEveryAddress: Bool

    init(allow: [AddressRange], deny: [AddressRange]) {
        self.allow = allow
        self.deny = deny
        admitsEveryAddress = allow.isEmpty && deny.isEmpty
    }

    /// Denied if any deny range matches; otherwise allowed if the allow list is empty or one of its ranges
    /// matches. Unix clients are always allowed (file permissions guard Unix sockets).
    @inline(__always)
    func admits(_ client: SocketAddress) -> Bool {
        admitsEveryAddress || admitsChecking(client)
    }

    private func admitsChecking(_ client: SocketAddress) -> Bool {
        if client.isUnix { return true }
        if deny.contains(where: { $0.contains(client) }) { return false }
        return allow.isEmpty || allow.contains(where: { $0.contains(client) })
    }
}
