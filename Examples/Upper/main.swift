// Ports the socketserver documentation's TCPServer example ("socketserver.TCPServer Example"):
//
//   class MyTCPHandler(socketserver.BaseRequestHandler):        final class UpperHandler: StreamRequestHandler
//       def handle(self):                                        func handle(_ request:)
//           self.data = self.request.recv(1024)                  request.read(upTo: 1024)
//           self.request.sendall(self.data.upper())              request.write(...uppercased)
//   with socketserver.TCPServer((HOST, PORT), MyTCPHandler)      TCPServer(host:port:mode: .sync)
//       as server: server.serve_forever()                        start(); wait for Ctrl-C; close()
//
// TCPServer serves one client at a time (`.sync`, socketserver's default). The handler loops, so one
// connection may send several messages: whatever a recv brings (newline or not) goes back upper-cased.
// `upper-example [PORT]` (0: any free port) prints `listening tcp://127.0.0.1:PORT`; SIGINT/SIGTERM stop it.
import EvServer
#if canImport(Glibc)
import Glibc
#endif

final class UpperHandler: StreamRequestHandler {
    func handle(_ request: StreamRequest) throws {
        while true {
            let data = try request.read(upTo: 1024)  // waits for at least one byte; [] at end of input
            if data.isEmpty { return }
            try request.write(data.map { $0 >= 97 && $0 <= 122 ? $0 - 32 : $0 })  // bytes.upper()
        }
    }
}

let stop = StopSignals()  // before the server starts threads: they inherit the blocked SIGINT and SIGTERM

let port = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 0 : 0
let server = try TCPServer(host: "127.0.0.1", port: port, mode: .sync) { UpperHandler() }
try server.start()
print("listening tcp://\(server.localAddress)")
fflush(nil)
stop.wait()  // Ctrl-C (KeyboardInterrupt) or SIGTERM
server.shutdown()
server.close()
