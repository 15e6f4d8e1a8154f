import EvServer

/// The `chat` service's one definition, whatever the execution mode: a client starts in room `lobby`; the
/// line `/join NAME` moves it to room NAME (answered `* joined NAME`); any other line goes to every other
/// member of its room, wherever they are connected (with `--registry`, on every daemon sharing it), as
/// `[ID] text`, ID the sender's connection id; the sender gets nothing back. A line longer than
/// `--max-line` bytes (its CR LF not counted) gets `ERROR line longer than N bytes` and the connection
/// closes. Rooms are the registry's topics (`join(topic:)`, `broadcast(_:topic:except:)`).
struct ChatRoom {
    /// The room a new client is in.
    static let lobby = "lobby"
    private(set) var room = ChatRoom.lobby
    let maximumLineLength: Int

    init(maximumLineLength: Int) { self.maximumLineLength = maximumLineLength }

    /// What a line asks for.
    enum Step: Equatable {
        /// Leave `from`, join `to`, and answer `reply`.
        case move(from: String, to: String, reply: [UInt8])
        /// Answer `reply` only (a `/join` without a name).
        case reply([UInt8])
        /// Send `message` to the others in `room`.
        case say(room: String, message: [UInt8])
        /// The line is too long: answer `reply` and close.
        case refuse(reply: [UInt8])
    }

    /// The longest line to read, newline included: the line and CR LF (a longer one is refused).
    var readLimit: Int { maximumLineLength + 2 }

    /// The step for one line (with or without its line end) from connection `id`.
    mutating func step(for line: [UInt8], from id: ConnectionID) -> Step {
        var text = line[...]
        if text.last == UInt8(ascii: "\n") { text = text.dropLast() }
        if text.last == UInt8(ascii: "\r") { text = text.dropLast() }
        guard text.count <= maximumLineLength else {
            return .refuse(reply: Array(lineTooLongReply(maximumLineLength).utf8))
        }
        let command = Array("/join ".utf8)
        if text.starts(with: command) || text.elementsEqual(command.dropLast()) {
            let name = String(decoding: text.dropFirst(command.count), as: UTF8.self).trimmingSpaces()
            guard !name.isEmpty else { return .reply(Array("* give a room: /join NAME\n".utf8)) }
            defer { room = name }
            return .move(from: room, to: name, reply: Array("* joined \(name)\n".utf8))
        }
        return .say(room: room, message: Array("[\(id)] ".utf8) + text + [UInt8(ascii: "\n")])
    }
}

extension ChatRoom.Step {
    /// Does the registry's part of the step (a move's leave and join, a line's broadcast to the room but
    /// the sender) for connection `id`. - Returns: what to answer the client, and whether to close then.
    func perform(
        id: ConnectionID, server: StreamServer, join: (String) -> Void, leave: (String) -> Void
    ) -> (reply: [UInt8]?, close: Bool) {
        switch self {
        case .move(let from, let to, let reply):
            leave(from)
            join(to)
            return (reply, false)
        case .reply(let reply):
            return (reply, false)
        case .say(let room, let message):
            server.broadcast(message, topic: room, except: id)
            return (nil, false)
        case .refuse(let reply):
            return (reply, true)
        }
    }
}

extension String {
    /// Without leading and trailing spaces and tabs.
    func trimmingSpaces() -> String {
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        return String(drop(while: blank).reversed().drop(while: blank).reversed())
    }
}
