import EvServer
import EvservedKit

/// One parser of untrusted input and the properties it must keep for every input: never crash, and what it
/// accepts it prints back in a form it accepts again as the same value. A broken property traps, which
/// libFuzzer reports as a crash with the input that caused it.
enum FuzzTarget: String, CaseIterable {
    /// `SocketAddress(parsing:)`: HOST:PORT, [IPV6]:PORT, link-local zones (`--listen`, tests, users).
    case address
    /// `ListenerSpec(parsing:)`: a whole `--listen` URL with its query.
    case listener
    /// `AddressRange(parsing:)`: CIDR rules from `--allow` / `--deny`.
    case cidr
    /// `InputBuffer`: line framing of client bytes arriving in arbitrary chunks.
    case lines
    /// `ProxyHeader.parse`: PROXY protocol v1/v2 headers from load balancers (or anyone who connects).
    case proxy

    func run(_ data: UnsafeRawBufferPointer) {
        switch self {
        case .address: FuzzTarget.address(String(decoding: data, as: UTF8.self))
        case .listener: FuzzTarget.listener(String(decoding: data, as: UTF8.self))
        case .cidr: FuzzTarget.cidr(String(decoding: data, as: UTF8.self))
        case .lines: FuzzTarget.lines(Array(data))
        case .proxy: FuzzTarget.proxy(Array(data))
        }
    }

    private static func address(_ text: String) {
        guard let address = try? SocketAddress(parsing: text) else { return }
        let printed = address.description
        guard let again = try? SocketAddress(parsing: printed) else {
            fatalError("'\(text)' parsed, but its printed form '\(printed)' does not")
        }
        check(again == address, "'\(text)' printed as '\(printed)' parses to a different address \(again)")
    }

    private static func listener(_ text: String) {
        guard let spec = try? ListenerSpec(parsing: text) else { return }
        let url = ListenerSpec.url(for: spec.address, transport: spec.transport)
        guard let again = try? ListenerSpec(parsing: url) else {
            fatalError("--listen '\(text)' parsed, but its printed URL '\(url)' does not")
        }
        check(
            again.address == spec.address && again.transport == spec.transport,
            "'\(text)' and its URL '\(url)' differ"
        )
    }

    private static func cidr(_ text: String) {
        guard let range = try? AddressRange(parsing: text) else { return }
        let printed = range.description
        guard let again = try? AddressRange(parsing: printed) else {
            fatalError("range '\(text)' parsed, but its printed form '\(printed)' does not")
        }
        check(again == range, "range '\(text)' printed as '\(printed)' parses to a different range")
    }

    /// The first byte picks the line limit, the second the chunk size; the rest arrives in those chunks.
    /// Every line taken ends with its only newline and keeps the limit, and lines plus what is left are
    /// exactly the input, until the first line too long.
    private static func lines(_ bytes: [UInt8]) {
        guard bytes.count >= 2 else { return }
        let maxLength = Int(bytes[0]) + 1
        let chunk = Int(bytes[1] % 16) + 1
        let input = Array(bytes[2...])
        var buffer = InputBuffer(limit: maxLength * 2)
        var output: [UInt8] = []
        var offset = 0
        while offset < input.count {
            let end = min(input.count, offset + min(chunk, buffer.room))
            input[offset..<end].withUnsafeBytes { try! buffer.append($0) }
            offset = end
            do {
                while let line = try buffer.nextLine(maxLength: maxLength) {
                    check(line.last == UInt8(ascii: "\n"), "a line without its newline")
                    check(line.dropLast().allSatisfy { $0 != UInt8(ascii: "\n") }, "two lines taken as one")
                    check(line.count <= maxLength, "a line of \(line.count) bytes over the limit \(maxLength)")
                    output += line
                }
            } catch {
                check(error.code == .lineTooLong, "unexpected error \(error)")
                check(buffer.count >= maxLength || offset <= input.count, "line too long before the limit")
                return
            }
        }
        output += buffer.takeAll()
        check(output == input, "framing lost or reordered bytes")
    }

    /// A header read takes a prefix of the input and reads the same from that prefix alone (it never looks
    /// past its end); written back with `encoded()`, it reads as the same header.
    private static func proxy(_ bytes: [UInt8]) {
        guard case .done(let header, let consumed) = ProxyHeader.parse(bytes) else { return }
        check(consumed > 0 && consumed <= bytes.count, "consumed \(consumed) of \(bytes.count) bytes")
        check(
            ProxyHeader.parse(Array(bytes[..<consumed])) == .done(header, consumed: consumed),
            "the header's own bytes read differently from the whole input"
        )
        let encoded = header.encoded()
        check(
            ProxyHeader.parse(encoded) == .done(header, consumed: encoded.count),
            "\(header) encoded as \(encoded) reads back differently"
        )
    }

    private static func check(_ condition: Bool, _ message: @autoclosure () -> String) {
        if !condition { fatalError(message()) }
    }
}
