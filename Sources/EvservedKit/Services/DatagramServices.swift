import EvServer

/// A datagram service: says what to send back, writing a new reply into `reply` (empty on entry) when it
/// makes one. Writing into the caller's buffer lets the event handler reuse one buffer, and `.received` lets
/// it send straight from the receive buffer: no allocation, and for echo no copy, per datagram.
typealias DatagramReply = @Sendable (_ datagram: UnsafeRawBufferPointer, _ reply: inout [UInt8]) -> DatagramAnswer

/// What a `DatagramReply` sends back.
enum DatagramAnswer {
    /// Nothing.
    case nothing
    /// The bytes it wrote into `reply`.
    case reply
    /// The datagram received, unchanged (the caller sends it from where it already is).
    case received
}

/// The built-in services over datagrams, with their RFC semantics for UDP.
enum DatagramReplies {
    /// RFC 862: the datagram back.
    static func echo(_ datagram: UnsafeRawBufferPointer, _ reply: inout [UInt8]) -> DatagramAnswer { .received }

    /// The datagram back upper-cased (ASCII letters).
    static func upper(_ datagram: UnsafeRawBufferPointer, _ reply: inout [UInt8]) -> DatagramAnswer {
        reply.append(contentsOf: datagram.lazy.map(uppercasedASCII))
        return .reply
    }

    /// RFC 867: any datagram gets the date and time.
    static func daytime(_ datagram: UnsafeRawBufferPointer, _ reply: inout [UInt8]) -> DatagramAnswer {
        reply.append(contentsOf: daytimeLine().utf8)
        return .reply
    }

    /// RFC 863: nothing back.
    static func discard(_ datagram: UnsafeRawBufferPointer, _ reply: inout [UInt8]) -> DatagramAnswer { .nothing }

    /// RFC 864: any datagram gets a datagram of a random number (0 to 512) of the pattern's characters,
    /// starting at a random place in it.
    static func chargen(_ datagram: UnsafeRawBufferPointer, _ reply: inout [UInt8]) -> DatagramAnswer {
        let count = Int.random(in: 0...512)
        let start = Int.random(in: 0..<chargenPattern.count)
        reply.append(contentsOf: (0..<count).lazy.map { chargenPattern[(start + $0) % chargenPattern.count] })
        return .reply
    }
}

/// A service as an event-driven datagram handler (one per server, on the loop: one reply buffer reused).
final class ReplyingDatagramEventHandler: DatagramEventHandler {
    private let reply: DatagramReply
    /// Unchecked: only `channel(_:received:from:)` touches it, on the loop thread, and `reply` cannot reach it.
    @exclusivity(unchecked) private var buffer: [UInt8] = []
    init(_ reply: @escaping DatagramReply) { self.reply = reply }

    func channel(_ channel: DatagramChannel, received datagram: UnsafeRawBufferPointer, from client: SocketAddress) {
        // Emptied after use, not before: echo never touches it, so costs nothing for it per datagram.
        switch reply(datagram, &buffer) {
        case .nothing: break
        case .received: channel.send(datagram, to: client)
        case .reply: channel.send(buffer, to: client)
        }
        if !buffer.isEmpty { buffer.removeAll(keepingCapacity: true) }
    }
}

/// A service as a blocking datagram handler.
final class ReplyingDatagramRequestHandler: DatagramRequestHandler {
    private let reply: DatagramReply
    init(_ reply: @escaping DatagramReply) { self.reply = reply }

    func handle(_ request: DatagramRequest) throws {
        var answer: [UInt8] = []
        switch request.datagram.withUnsafeBytes({ reply($0, &answer) }) {
        case .nothing: break
        case .received: try request.reply(request.datagram)
        case .reply: try request.reply(answer)
        }
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

    nonisolated(nonsending) func handle(
        _ datagram: [UInt8], from client: SocketAddress, channel: DatagramChannel
    ) async throws {
        var answer = self.answer
        self.answer = []
        defer { self.answer = answer }
        answer.removeAll(keepingCapacity: true)
        switch datagram.withUnsafeBytes({ reply($0, &answer) }) {
        case .nothing: break
        case .received: channel.send(datagram, to: client)
        case .reply: channel.send(answer, to: client)
        }
    }
}
