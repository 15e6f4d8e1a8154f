import Foundation
import Testing

@testable import EvServer

#if canImport(Glibc)
import Glibc
#endif

/// How a blocking handler's reads wait: with an idle timeout, the first read that must wait polls; from
/// then on the socket blocks in `recv` with `SO_RCVTIMEO` at the timeout (one system call per read), and
/// the timeout still ends a read that waits too long.
@Suite("blocking reads wait in the kernel")
struct BlockingWaitTests {
    /// What the handler saw of its socket after each read: blocking or not, and `SO_RCVTIMEO` in ms.
    final class Probe: StreamRequestHandler {
        let seen: Record
        let thread: Record
        init(_ seen: Record, thread: Record) { (self.seen, self.thread) = (seen, thread) }
        func handle(_ request: StreamRequest) throws {
            thread.add("\(currentThreadID())")
            do {
                while let line = try request.readLine() {
                    seen.add("\(Self.describe(request.descriptor))")
                    try request.write(line)
                }
            } catch let error as ConnectionError {
                seen.add("\(error.code)")
            }
        }

        static func describe(_ descriptor: CInt) -> String {
            var value = timeval()
            var length = socklen_t(MemoryLayout<timeval>.size)
            getsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &value, &length)
            let blocking = fcntl(descriptor, F_GETFL) & O_NONBLOCK == 0
            return "\(blocking ? "blocking" : "non-blocking") \(value.tv_sec * 1000 + value.tv_usec / 1000)"
        }
    }

    @Test("after a read that waited, reads block with SO_RCVTIMEO, and the timeout still fires",
          arguments: [ExecutionMode.thread, .pool(threads: 1, queueLimit: 0)])
    func readsWaitInTheKernel(mode: ExecutionMode) throws {
        let (seen, thread) = (Record(), Record())
        let server = try makeServer(mode: mode, handler: .blocking { Probe(seen, thread: thread) }, start: true) {
            $0.idleTimeout = 0.5
        }
        defer { server.close() }
        let client = try TestClient(server.localAddress)
        #expect(waitUntil(timeout: 5) { thread.all.count == 1 })
        let handlerThread = Int(thread.all[0])!
        for line in ["one\n", "two\n", "three\n"] {
            // Sent once the handler sleeps in its read: it waits for each line, the first time with `poll`.
            #expect(waitUntil(timeout: 5) { Self.isSleeping(handlerThread) })
            try client.send(line)
            #expect(try client.readLine() == line)
        }
        // Then the client is silent: the blocking read times out at the idle timeout.
        #expect(waitUntil(timeout: 5) { seen.all.count == 4 })
        #expect(seen.all == ["non-blocking 0", "blocking 500", "blocking 500", "timedOut"])
    }

    /// Whether thread `id` of this process sleeps (state `S` in /proc: in `poll`, `recv`, ...).
    static func isSleeping(_ id: Int) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/self/task/\(id)/stat", encoding: .utf8),
              let end = stat.lastIndex(of: ")") else { return false }
        return stat[stat.index(end, offsetBy: 2)] == "S"
    }
}
