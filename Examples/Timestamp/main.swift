// Ports the classic timestamp server of the socketserver tutorials (Core Python Programming's
// tsTservSS.py: TCPServer + StreamRequestHandler):
//
//   class MyRequestHandler(StreamRequestHandler):          final class TimestampHandler: StreamRequestHandler
//       def handle(self):                                  func handle(_ request:)
//           self.wfile.write('[%s] %s' % (ctime(),         request.write("[\(ctime())] " + line)
//                            self.rfile.readline()))       request.readLine()
//   tcpServ = TCPServer(ADDR, MyRequestHandler)            TCPServer(host:port:mode: .sync)
//   tcpServ.serve_forever()                                start(); wait for Ctrl-C; close()
//
// One line per connection: the client sends `text\r\n`, gets `[Sun Nov 29 10:42:07 2026] text\r\n`, and the
// server closes the connection when `handle` returns (so a client reusing it reads b""). One client at a
// time, as TCPServer (`.sync`).
// `timestamp-example [PORT]` (0: any free port) prints `listening tcp://127.0.0.1:PORT`; SIGINT/SIGTERM stop it.
import EvServer
#if canImport(Glibc)
import Glibc
#endif

final class TimestampHandler: StreamRequestHandler {
    func handle(_ request: StreamRequest) throws {
        guard let line = try request.readLine() else { return }  // self.rfile.readline(), "\r\n" included
        try request.write(Array("[\(ctime())] ".utf8) + line)
    }

    /// time.ctime(): local time as `Sun Nov 29 10:42:07 2026`.
    func ctime() -> String {
        var now = time(nil)
        var buffer = [CChar](repeating: 0, count: 26)
        _ = ctime_r(&now, &buffer)  // ends with "\n"
        return String(decoding: buffer.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

let stop = StopSignals()  // before the server starts threads: they inherit the blocked SIGINT and SIGTERM

let port = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 0 : 0
let server = try TCPServer(host: "127.0.0.1", port: port, mode: .sync) { TimestampHandler() }
try server.start()
print("listening tcp://\(server.localAddress)")
fflush(nil)
stop.wait()  // Ctrl-C (KeyboardInterrupt) or SIGTERM
server.shutdown()
server.close()
