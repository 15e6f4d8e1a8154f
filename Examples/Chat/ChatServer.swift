import EvServer

#if canImport(Glibc)
import Glibc
#endif

/// The classic exercise: clients message each other. Each client names itself on its first line; after
/// that every line it sends goes to everyone else in the room, as `name: line`. Joins and leaves are
/// announced. Written as an async handler: it reads like socketserver's `handle()`, and each waiting
/// client costs no thread.
final class ChatHandler: StreamAsyncHandler {
    static let room = "room"

    func handle(_ connection: AsyncConnection) async throws {
        try await connection.write("name?\n")
        guard let first = try await connection.readLine(maxLength: 64) else { return }
        let name = String(decoding: first, as: UTF8.self).trimmingWhitespace()
        guard !name.isEmpty else { return try await connection.write("a name, please\n") }
        let server = connection.server
        connection.join(topic: Self.room)
        server.broadcast(Array("* \(name) joined\n".utf8), topic: Self.room, except: connection.id)
        try await connection.write("welcome, \(name)\n")
        defer { server.broadcast(Array("* \(name) left\n".utf8), topic: Self.room, except: connection.id) }
        for try await line in connection.lines {
            server.broadcast(Array("\(name): ".utf8) + line, topic: Self.room, except: connection.id)
        }
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars.drop { $0 == " " || $0 == "\r" || $0 == "\n" || $0 == "\t" }
        return String(String.UnicodeScalarView(scalars.reversed().drop { $0 == " " || $0 == "\r" || $0 == "\n" || $0 == "\t" }.reversed()))
    }
}

/// `chat-example [PORT]`: serves the chat on 127.0.0.1 (port 0: a free one) until SIGINT/SIGTERM.
@main
enum ChatServer {
    static func main() throws {
        // Blocked before the server starts its threads, so they inherit the mask: only sigwait takes them.
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        let port = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 0 : 0
        let server = try StreamServer(
            configuration: ServerConfiguration(address: try SocketAddress(host: "127.0.0.1", port: port), mode: .async),
            handler: .async { ChatHandler() }
        )
        try server.start()
        print("listening tcp://\(server.localAddress)")
        fflush(nil)
        var received: CInt = 0
        sigwait(&signals, &received)
        server.shutdownGracefully(timeout: 2)
    }
}
