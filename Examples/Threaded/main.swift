// Ports the threaded server of the socketserver tutorials: ThreadingMixIn (the docs' "Asynchronous Mixins"
// example, replying `thread name: DATA`) with a StreamRequestHandler that uses setup/handle/finish to keep
// a shared list of connected clients, and a per-connection timeout:
//
//   class ThreadedTCPServer(ThreadingMixIn, TCPServer)     TCPServer(host:port:mode: .thread)
//   clients = []; lock = threading.Lock()                  static let clients = Mutex<[SocketAddress]>([])
//   def setup(self): with lock: clients.append(...)        setup(_:): clients.withLock { $0.append(...) }
//   def handle(self):                                      handle(_:)
//       self.request.settimeout(6)                         request.idleTimeout = 6
//       try: for line in self.rfile: ...                   do { while let line = try request.readLine() ... }
//       except socket.timeout: pass                        catch ConnectionError where code == .timedOut
//       threading.current_thread().name                    pthread_getname_np(pthread_self(), ...)
//   def finish(self): with lock: clients.remove(...)       finish(_:): clients.withLock { $0.removeAll ... }
//
// Each line comes back as `evserver-work: LINE`; the line `who` answers the number of connected clients.
// A client silent for the timeout is closed without a word.
// `threaded-example [PORT [TIMEOUT]]` (0: any free port; TIMEOUT seconds, default 6) prints
// `listening tcp://127.0.0.1:PORT`; SIGINT/SIGTERM stop it.
import EvServer
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

final class ThreadedHandler: StreamRequestHandler {
    static let clients = Mutex<[SocketAddress]>([])
    static let timeout = CommandLine.arguments.count > 2 ? Double(CommandLine.arguments[2]) ?? 6 : 6

    func setup(_ request: StreamRequest) throws {
        Self.clients.withLock { $0.append(request.clientAddress) }
    }

    func handle(_ request: StreamRequest) throws {
        request.idleTimeout = Self.timeout
        do {
            while let line = try request.readLine() {
                var text = String(decoding: line, as: UTF8.self)
                while text.last?.isNewline == true { text.removeLast() }  // line.rstrip(b"\r\n")
                if text == "who" {
                    try request.write("\(Self.clients.withLock { $0.count })\n")
                } else {
                    try request.write("\(threadName()): \(text.uppercased())\n")
                }
            }
        } catch let error as ConnectionError where error.code == .timedOut {
            return  // silent too long: returning closes the connection
        }
    }

    func finish(_ request: StreamRequest) throws {
        Self.clients.withLock { $0.removeAll { $0 == request.clientAddress } }
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
let server = try TCPServer(host: "127.0.0.1", port: port, mode: .thread) { ThreadedHandler() }
try server.start()
print("listening tcp://\(server.localAddress)")
fflush(nil)
stop.wait()  // Ctrl-C (KeyboardInterrupt) or SIGTERM
server.shutdown()
server.close()
