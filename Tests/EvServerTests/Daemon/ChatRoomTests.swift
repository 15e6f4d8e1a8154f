@testable import EvservedKit
import Testing

@Suite("the chat service's lines")
struct ChatRoomTests {
    @Test("a client starts in the lobby; /join moves it and is answered; other lines are said to the room")
    func steps() {
        var room = ChatRoom(maximumLineLength: 16)
        #expect(room.room == "lobby")
        #expect(room.step(for: Array("hello\r\n".utf8), from: 7) == .say(room: "lobby", message: Array("[7] hello\n".utf8)))
        #expect(room.step(for: Array("/join  red \n".utf8), from: 7) == .move(from: "lobby", to: "red", reply: Array("* joined red\n".utf8)))
        #expect(room.room == "red")
        #expect(room.step(for: Array("/join\n".utf8), from: 7) == .reply(Array("* give a room: /join NAME\n".utf8)))
        #expect(room.step(for: Array("/joined\n".utf8), from: 7) == .say(room: "red", message: Array("[7] /joined\n".utf8)))
    }

    @Test("a line longer than the limit, line end not counted, is refused with the error line")
    func tooLong() {
        var room = ChatRoom(maximumLineLength: 4)
        #expect(room.step(for: Array("abcd\r\n".utf8), from: 1) == .say(room: "lobby", message: Array("[1] abcd\n".utf8)))
        #expect(room.step(for: Array("abcde\n".utf8), from: 1) == .refuse(reply: Array("ERROR line longer than 4 bytes\r\n".utf8)))
    }
}
