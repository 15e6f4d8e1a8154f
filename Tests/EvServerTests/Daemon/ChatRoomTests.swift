@testable import EvservedKit
import Testing

@Suite("the chat service's lines")
struct ChatRoomTests {
    private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test("a client starts in the lobby; /join moves it and is answered; other lines are said to the room")
    func steps() {
        var room = ChatRoom(maximumLineLength: 16)
        #expect(room.room == "lobby")
        #expect(room.step(for: bytes("hello\r\n"), from: 7) == .say(room: "lobby", message: bytes("[7] hello\n")))
        #expect(
            room.step(for: bytes("/join  red \n"), from: 7)
                == .move(from: "lobby", to: "red", reply: bytes("* joined red\n"))
        )
        #expect(room.room == "red")
        #expect(room.step(for: bytes("/join\n"), from: 7) == .reply(bytes("* give a room: /join NAME\n")))
        #expect(room.step(for: bytes("/joined\n"), from: 7) == .say(room: "red", message: bytes("[7] /joined\n")))
    }

    @Test("a line longer than the limit, line end not counted, is refused with the error line")
    func tooLong() {
        var room = ChatRoom(maximumLineLength: 4)
        #expect(room.step(for: bytes("abcd\r\n"), from: 1) == .say(room: "lobby", message: bytes("[1] abcd\n")))
        #expect(
            room.step(for: bytes("abcde\n"), from: 1) == .refuse(reply: bytes("ERROR line longer than 4 bytes\r\n"))
        )
    }
}
