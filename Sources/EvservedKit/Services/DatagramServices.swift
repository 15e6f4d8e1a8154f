import EvServer

/// A datagram service: appends its reply to `reply` (empty on entry) and returns whether to send it.
/// Writing into the caller's buffer lets the event handler reuse one buffer: no allocation per datagram.
typealias DatagramReply = @Sendable (_ datagram: UnsafeRawBufferPointer, _ reply: inout [UInt8]) -> Bool

/// The built-in services over datagrams, with their RFC semantics for UDP.
enum DatagramReplies {
    /// RFC 862: the datagram back.
    static func echo(_ datagram: UnsafeRawBufferPointer, _ reply: inout [UInt8]) -> Bool {
        reply.append(contentsOf: datagram)
        return true
    }

    /// The datagram back upper-cased (ASCII letters).
    static func upper(_ datagram: UnsafeRawBufferPointer, _ reply: inout [UInt8]) -> Bool {
        reply.append(contentsOf: datagram.lazy.map(uppercasedASCII))
        return true
    }

    /// RFC 867: any datagram gets the date and time.
    static func daytime(_ datagram: UnsafeRawBufferPointer, _ reply: inout [UInt8]) -> Bool {
        reply.append(contentsOf: daytimeLine().utf8)
        return true
    }

    /// RFC 863: nothing back.
    static func discard(_ datagram: UnsafeRawBufferPointer, _ reply: inout [UInt8]) -> Bool { false }

    /// RFC 864: any datagram gets a datagram of a random number (0 to 512) of the pattern's characters,
    /// starting at a random place in it.
    static func chargen(_ datagram: UnsafeRawBufferPointer, _ reply: inout [UInt8]) -> Bool {
        let count = Int.random(in: 0...512)
        let start = Int.random(in: 0..<chargenPattern.count)
        reply.append(contentsOf: (0..<count).lazy.map { chargenPattern[(start + $0) % chargenPattern.count] })
        return true
    }
}

/// A service as an event-driven datagram handler (one per server, on the loop: one reply buffer reused).
final class ReplyingDatagramEventHandler: DatagramEventHandler {
    private let reply: DatagramReply
    /// Unchecked: only `channel(_:received:from:)` touches it, on the loop thread, and `reply` cannot reach it.
    @exclusivity(unchecked) private var buffer: [UInt8] = []
    init(_ reply: @escaping DatagramReply) { self.reply = reply }

    func channel(_ channel: DatagramChannel, received datagram: UnsafeRawBufferPointer, from client: SocketAddress) {
        buffer.removeAll(keepingCapacity: true)
        if reply(datagram, &buffer) { channel.send(buffer, to: client) }
    }
}

/// A service as a blocking datagram handler.
final class ReplyingDatagramRequestHandler: DatagramRequestHandler {
    private let reply: DatagramReply
    init(_ reply: @escaping DatagramReply) { self.reply = reply }

    func handle(_ request: DatagramRequest) throws {
        var answer: [UInt8] = []
        if request.datagram.withUnsafeBytes({ reply($0, &answer) }) { try request.reply(answer) }
    }
}

/// A service as an async datagram handler.
///
/// Its tasks run on the loop thread and do not suspend, so one answer buffer serves them all, reused for its
/// capacity (no allocation per datagram).
final class ReplyingDatagramAsyncHandler: DatagramAsyncHandler {
    private let reply: DatagramReply
    @exclusivity(unchecked) private var answer: [UInt8] = []
    init(_ reply: @escaping DatagramReply) { self.reply = reply }

    func handle(_ datagram: [UInt8], from client: SocketAddress, channel: DatagramChannel) async throws {
        var answer = self.answer
        self.answer = []
        defer { self.answer = answer }
        answer.removeAll(keepingCapacity: true)
        if datagram.withUnsafeBytes({ reply($0, &answer) }) { channel.send(answer, to: client) }
    }
}
