import EvServer

/// The built-in services over datagrams, each a function from a datagram to its reply (`nil`: none),
/// with their RFC semantics for UDP.
enum DatagramReplies {
    /// RFC 862: the datagram back.
    static func echo(_ datagram: UnsafeRawBufferPointer) -> [UInt8]? { Array(datagram) }

    /// The datagram back upper-cased (ASCII letters).
    static func upper(_ datagram: UnsafeRawBufferPointer) -> [UInt8]? { datagram.map(uppercasedASCII) }

    /// RFC 867: any datagram gets the date and time.
    static func daytime(_ datagram: UnsafeRawBufferPointer) -> [UInt8]? { Array(daytimeLine().utf8) }

    /// RFC 863: nothing back.
    static func discard(_ datagram: UnsafeRawBufferPointer) -> [UInt8]? { nil }

    /// RFC 864: any datagram gets a datagram of a random number (0 to 512) of the pattern's characters,
    /// starting at a random place in it.
    static func chargen(_ datagram: UnsafeRawBufferPointer) -> [UInt8]? {
        let count = Int.random(in: 0...512)
        let start = Int.random(in: 0..<chargenPattern.count)
        return (0..<count).map { chargenPattern[(start + $0) % chargenPattern.count] }
    }
}

/// A reply function as an event-driven datagram handler.
final class ReplyingDatagramEventHandler: DatagramEventHandler {
    private let reply: @Sendable (UnsafeRawBufferPointer) -> [UInt8]?
    init(_ reply: @escaping @Sendable (UnsafeRawBufferPointer) -> [UInt8]?) { self.reply = reply }

    func channel(_ channel: DatagramChannel, received datagram: UnsafeRawBufferPointer, from client: SocketAddress) {
        if let answer = reply(datagram) { channel.send(answer, to: client) }
    }
}

/// A reply function as a blocking datagram handler.
final class ReplyingDatagramRequestHandler: DatagramRequestHandler {
    private let reply: @Sendable (UnsafeRawBufferPointer) -> [UInt8]?
    init(_ reply: @escaping @Sendable (UnsafeRawBufferPointer) -> [UInt8]?) { self.reply = reply }

    func handle(_ request: DatagramRequest) throws {
        let answer = request.datagram.withUnsafeBytes { reply($0) }
        if let answer { try request.reply(answer) }
    }
}
