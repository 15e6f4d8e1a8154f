// Ports the tutorials' hand-rolled thread-pool server (a ThreadPoolMixIn: N threads taking requests from a
// Queue, instead of ThreadingMixIn's thread per client) as a bounded pool:
//
//   class ThreadPoolMixIn(ThreadingMixIn):                 .pool(threads: 4, queueLimit: 16)
//       numThreads = 4; requests = Queue(16)               (when all are taken the server stops accepting,
//       def process_request(self, request, addr):           and new clients wait in the kernel's backlog)
//           self.requests.put((request, addr))
//   class EchoHandler(StreamRequestHandler):               final class PoolEchoHandler: StreamRequestHandler
//       for line in self.rfile:                            while let line = try request.readLine()
//           self.wfile.write(name + b': ' + line)          request.write("\(threadName()): " + line)
//
// Each line comes back prefixed by the worker's thread name (`evserver-wk-0` ... `evserver-wk-3`).
// `pool-example [PORT]` (0: any free port) prints `listening tcp://127.0.0.1:PORT`; SIGINT/SIGTERM stop it.
import EvServer
#if canImport(Glibc)
import Glibc
#endif

final class PoolEchoHandler: StreamRequestHandler {
    func handle(_ request: StreamRequest) throws {
        while let line = try request.readLine() {
            try request.write(Array("\(threadName()): ".utf8) + line)
        }
    }

    /// threading.current_thread().name: pthread_getname_np(pthread_self()), looked up by name because
    /// Glibc's Swift module hides it (it needs _GNU_SOURCE).
    func threadName() -> String {
        typealias GetName = @convention(c) (pthread_t, UnsafeMutablePointer<CChar>, Int) -> CInt
        let getName = unsafeBitCast(dlsym(nil, "pthread_getname_np")!, to: GetName.self)
        var name = [CChar](repeating: 0, count: 16)
        _ = getName(pthread_self(), &name, name.count)
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

let stop = StopSignals()  // before the server starts threads: they inherit the blocked SIGINT and SIGTERM

let port = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 0 : 0
let server = try TCPServer(host: "127.0.0.1", port: port, mode: .pool(threads: 4, queueLimit: 16)) {
    PoolEchoHandler()
}
try server.start()
print("listening tcp://\(server.localAddress)")
fflush(nil)
stop.wait()  // Ctrl-C (KeyboardInterrupt) or SIGTERM
server.shutdown()
server.close()
