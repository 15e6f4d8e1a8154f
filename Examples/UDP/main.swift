// Ports the socketserver documentation's UDPServer example ("socketserver.UDPServer Example"):
//
//   class MyUDPHandler(socketserver.BaseRequestHandler):   final class UpperDatagramHandler: DatagramRequestHandler
//       def handle(self):                                  func handle(_ request:)
//           data = self.request[0]                         request.datagram
//           socket = self.request[1]
//           socket.sendto(data.upper(), self.client_address)   request.reply(...uppercased)
//   with socketserver.UDPServer((HOST, PORT), MyUDPHandler)    UDPServer(host:port:mode: .sync)
//       as server: server.serve_forever()                  start(); wait for Ctrl-C; close()
//
// One datagram in, the same upper-cased out. The client is `udp-client-example` (Examples/UDPClient).
// `udp-example [PORT]` (0: any free port) prints `listening udp://127.0.0.1:PORT`; SIGINT/SIGTERM stop it.
import EvServer
#if canImport(Glibc)
import Glibc
#endif

final class UpperDatagramHandler: DatagramRequestHandler {
    func handle(_ request: DatagramRequest) throws {
        try request.reply(request.datagram.map { $0 >= 97 && $0 <= 122 ? $0 - 32 : $0 })  // data.upper()
    }
}

let stop = StopSignals()  // before the server starts threads: they inherit the blocked SIGINT and SIGTERM

let port = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 0 : 0
let server = try UDPServer(host: "127.0.0.1", port: port, mode: .sync) { UpperDatagramHandler() }
try server.start()
print("listening udp://\(server.localAddress)")
fflush(nil)
stop.wait()  // Ctrl-C (KeyboardInterrupt) or SIGTERM
server.shutdown()
server.close()
