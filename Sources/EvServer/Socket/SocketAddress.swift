#if canImport(Glibc)
import Glibc
#endif

/// An IPv4, IPv6 or Unix-domain socket address, parsed from and printed as text.
///
/// Text forms: `127.0.0.1:7000`, `[::1]:7000`, `[fe80::1%eth0]:7000`, and for Unix sockets the path
/// (`/run/evserved.sock`).
/// Host parts are numeric (no DNS lookups, which would block the loop); `localhost` means `127.0.0.1`.
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
    /// Binary, as the kernel gives it: reading a client's address (every accept, every datagram) costs no
    /// text formatting; `host` and `description` format on demand.
    enum Storage: Sendable, Hashable {
        /// `address`: `in_addr.s_addr` (network order).
        case ipv4(address: UInt32, port: UInt16)
        /// `address`: the 16 bytes of `in6_addr`, as two words in memory order.
        case ipv6(address: IPv6Bytes, port: UInt16, scopeID: UInt32)
        case unix(path: String)
    }

    struct IPv6Bytes: Sendable, Hashable {
        var high: UInt64
        var low: UInt64
        init(_ address: in6_addr) {
            (high, low) = withUnsafeBytes(of: address) {
                ($0.load(as: UInt64.self), $0.load(fromByteOffset: 8, as: UInt64.self))
            }
        }
        var in6: in6_addr {
            var address = in6_addr()
            withUnsafeMutableBytes(of: &address) { bytes in
                bytes.storeBytes(of: high, as: UInt64.self)
                bytes.storeBytes(of: low, toByteOffset: 8, as: UInt64.self)
            }
            return address
        }
    }

    let storage: Storage

    /// The longest Unix socket path the kernel accepts (`sun_path` less its terminating NUL): 107 on Linux.
    public static let maximumUnixPathLength = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    /// An IP address and port. `host` is numeric IPv4 or IPv6 text (`127.0.0.1`, `::1`, `0.0.0.0`, `::`),
    /// or `localhost`. A link-local IPv6 address needs its interface: `fe80::1%eth0` (or `%2`, the index).
    public init(host: String, port: Int) throws(ServerError) {
        guard (0...65535).contains(port) else {
            throw ServerError(.invalidAddress, "port \(port) is out of range: use 0 to 65535 (0 picks a free port)")
        }
        let host = host == "localhost" ? "127.0.0.1" : host
        let (numeric, zone) = SocketAddress.splitZone(host)
        var v4 = in_addr()
        var v6 = in6_addr()
        if zone == nil, inet_pton(AF_INET, numeric, &v4) == 1 {
            storage = .ipv4(address: v4.s_addr, port: UInt16(port))
        } else if inet_pton(AF_INET6, numeric, &v6) == 1 {
            let scopeID = try SocketAddress.scopeID(zone, of: v6, in: host)
            storage = .ipv6(address: IPv6Bytes(v6), port: UInt16(port), scopeID: scopeID)
        } else {
            throw ServerError(
                .invalidAddress,
                "'\(host)' is not a numeric IPv4 or IPv6 address (write 127.0.0.1, ::1, 0.0.0.0 or ::)"
            )
        }
    }

    private static func splitZone(_ host: String) -> (String, String?) {
        guard let percent = host.firstIndex(of: "%") else { return (host, nil) }
        return (String(host[..<percent]), String(host[host.index(after: percent)...]))
    }

    /// The interface index of a link-local address's zone (`eth0`, `2`); 0 for other addresses.
    private static func scopeID(_ zone: String?, of address: in6_addr, in text: String) throws(ServerError) -> UInt32 {
        let bytes = withUnsafeBytes(of: address) { Array($0) }
        let isLinkLocal = bytes[0] == 0xfe && (bytes[1] & 0xc0) == 0x80
        guard let zone else {
            if isLinkLocal {
                throw ServerError(
                    .invalidAddress,
                    "'\(text)' is link-local: name its interface, as in fe80::1%eth0 (list them with `ip link`)"
                )
            }
            return 0
        }
        guard isLinkLocal else {
            throw ServerError(
                .invalidAddress,
                "'\(text)': an interface (%\(zone)) applies only to link-local addresses (fe80::/10)"
            )
        }
        if !zone.isEmpty, zone.allSatisfy(\.isASCII), let index = UInt32(zone), index > 0 { return index }
        let index = if_nametoindex(zone)
        guard index != 0 else {
            throw ServerError(.invalidAddress, "'\(text)': no network interface '\(zone)' (list them with `ip link`)")
        }
        return index
    }

    /// A Unix-domain socket path.
    public init(unixPath path: String) throws(ServerError) {
        guard !path.isEmpty else {
            throw ServerError(.invalidAddress, "the Unix socket path is empty")
        }
        guard path.utf8.count <= SocketAddress.maximumUnixPathLength else {
            throw ServerError(
                .unixPathTooLong,
                """
                Unix socket path is \(path.utf8.count) bytes, longer than the \
                \(SocketAddress.maximumUnixPathLength) the kernel allows: use a shorter path
                """
            )
        }
        guard !path.utf8.contains(0) else {
            throw ServerError(.invalidAddress, "the Unix socket path contains a NUL byte")
        }
        storage = .unix(path: path)
    }

    /// Parses `HOST:PORT`, `[IPV6]:PORT`, or a Unix path (anything starting with `/` or `.`).
    public init(parsing text: String) throws(ServerError) {
        if text.hasPrefix("/") || text.hasPrefix(".") {
            try self.init(unixPath: text)
            return
        }
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw ServerError(.invalidAddress, "'\(text)': an IPv6 address needs a closing ']' (as in [::1]:7000)")
            }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else {
                throw ServerError(
                    .invalidAddress, "'\(text)': expected ':PORT' after the IPv6 address (as in [::1]:7000)"
                )
            }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw ServerError(.invalidAddress, "'\(text)': expected HOST:PORT (as in 127.0.0.1:7000)")
            }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") {
                throw ServerError(.invalidAddress, "'\(text)': put an IPv6 address in brackets (as in [::1]:7000)")
            }
        }
        guard !portText.isEmpty, portText.allSatisfy(\.isASCII), let port = Int(portText) else {
            throw ServerError(.invalidAddress, "'\(text)': port '\(portText)' is not a number (use 0 to 65535)")
        }
        try self.init(host: host.isEmpty ? "0.0.0.0" : String(host), port: port)
    }

    // MARK: Properties

    /// The port of an IP address; `nil` for a Unix path.
    public var port: Int? {
        switch storage {
        case .ipv4(_, let port), .ipv6(_, let port, _): return Int(port)
        case .unix: return nil
        }
    }

    /// The numeric host of an IP address; `nil` for a Unix path.
    public var host: String? {
        switch storage {
        case .ipv4(let address, _): return SocketAddress.format(in_addr(s_addr: address))
        case .ipv6(let address, _, _): return SocketAddress.format(address.in6)
        case .unix: return nil
        }
    }

    /// The path of a Unix address (empty for an unnamed client socket); `nil` for an IP address.
    public var unixPath: String? {
        if case .unix(let path) = storage { return path }
        return nil
    }

    /// True for a Unix socket path (named or not).
    public var isUnix: Bool { unixPath != nil }

    /// The address's bytes in network order (4 for IPv4, 16 for IPv6); `nil` for a Unix path.
    var addressBytes: [UInt8]? {
        switch storage {
        case .ipv4(let address, _):
            return withUnsafeBytes(of: address) { Array($0) }
        case .ipv6(let address, _, _):
            return withUnsafeBytes(of: address.in6) { Array($0) }
        case .unix:
            return nil
        }
    }

    /// The address as text that `init(parsing:)` reads back: `127.0.0.1:7000`, `[::1]:7000`, or the Unix path.
    public var description: String {
        switch storage {
        case .ipv4(_, let port): return "\(host!):\(port)"
        case .ipv6(_, let port, 0): return "[\(host!)]:\(port)"
        case .ipv6(_, let port, let scopeID): return "[\(host!)%\(SocketAddress.interfaceName(scopeID))]:\(port)"
        case .unix(let path): return path.isEmpty ? "unix:(unnamed)" : path
        }
    }

    var family: CInt {
        switch storage {
        case .ipv4: return AF_INET
        case .ipv6: return AF_INET6
        case .unix: return AF_UNIX
        }
    }

    /// Reads an address the kernel wrote (from `accept`, `getsockname`, `recvfrom`).
    package init(storage raw: UnsafePointer<sockaddr_storage>, length: socklen_t) {
        switch CInt(raw.pointee.ss_family) {
        case AF_INET:
            let address = UnsafeRawPointer(raw).load(as: sockaddr_in.self)
            storage = .ipv4(address: address.sin_addr.s_addr, port: UInt16(bigEndian: address.sin_port))
        case AF_INET6:
            let address = UnsafeRawPointer(raw).load(as: sockaddr_in6.self)
            storage = .ipv6(
                address: IPv6Bytes(address.sin6_addr),
                port: UInt16(bigEndian: address.sin6_port),
                scopeID: address.sin6_scope_id
            )
        default:
            let pathLength = Int(length) - MemoryLayout<sa_family_t>.size
            let path = UnsafeRawPointer(raw).advanced(by: MemoryLayout<sa_family_t>.size)
                .withMemoryRebound(to: UInt8.self, capacity: max(pathLength, 0)) { bytes in
                    let buffer = UnsafeBufferPointer(start: bytes, count: max(pathLength, 0))
                    return String(decoding: buffer.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
            storage = .unix(path: path)
        }
    }

    /// An interface's name, or its index when it has none (any more).
    private static func interfaceName(_ index: UInt32) -> String {
        var name = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
        guard if_indextoname(index, &name) != nil else { return "\(index)" }
        return name.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    private static func format(_ address: in_addr) -> String {
        var address = address
        var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        inet_ntop(AF_INET, &address, &text, socklen_t(text.count))
        return text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    private static func format(_ address: in6_addr) -> String {
        var address = address
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        inet_ntop(AF_INET6, &address, &text, socklen_t(text.count))
        return text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}
