import EvServer
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The transports every scenario runs over.
enum Transport: String, CaseIterable, CustomStringConvertible, Sendable {
    case tcp4, tcp6, unix
    var description: String { rawValue }

    func address() throws -> SocketAddress {
        switch self {
        case .tcp4: return try SocketAddress(host: "127.0.0.1", port: 0)
        case .tcp6: return try SocketAddress(host: "::1", port: 0)
        case .unix: return try SocketAddress(unixPath: temporarySocketPath())
        }
    }
}

/// The datagram transports every datagram scenario runs over.
enum DatagramTransport: String, CaseIterable, CustomStringConvertible, Sendable {
    case udp4, udp6, unixgram
    var description: String { rawValue }

    func address() throws -> SocketAddress {
        switch self {
        case .udp4: return try SocketAddress(host: "127.0.0.1", port: 0)
        case .udp6: return try SocketAddress(host: "::1", port: 0)
        case .unixgram: return try SocketAddress(unixPath: temporarySocketPath())
        }
    }
}

/// The modes every scenario runs in.
let allModes: [ExecutionMode] = [.event, .sync, .thread, .pool(threads: 2, queueLimit: 4), .async]

/// The handler for `mode`'s style, from one of three factories.
func handler(
    for mode: ExecutionMode, event: @escaping @Sendable () -> any StreamEventHandler,
    blocking: @escaping @Sendable () -> any StreamRequestHandler, async: @escaping @Sendable () -> any StreamAsyncHandler
) -> StreamHandler {
    mode == .async ? .async(async) : mode.isBlocking ? .blocking(blocking) : .event(event)
}

/// The datagram handler for `mode`'s style.
func datagramHandler(
    for mode: ExecutionMode, event: @escaping @Sendable () -> any DatagramEventHandler,
    blocking: @escaping @Sendable () -> any DatagramRequestHandler, async: @escaping @Sendable () -> any DatagramAsyncHandler
) -> DatagramHandler {
    mode == .async ? .async(async) : mode.isBlocking ? .blocking(blocking) : .event(event)
}

/// A short, unique Unix socket path under /tmp.
func temporarySocketPath() -> String {
    var template = Array("/tmp/evs-XXXXXX".utf8CString)
    let directory = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    return directory + "/s"
}

/// Starts `serveForever` on a thread of its own; `join` waits for it to return.
final class ServingThread: Sendable {
    private let done = Lock(false)
    /// What serveForever threw, if anything.
    let error = Lock<ServerError?>(nil)

    convenience init(_ server: StreamServer) {
        self.init { () throws(ServerError) in try server.serveForever() }
    }

    convenience init(_ server: DatagramServer) {
        self.init { () throws(ServerError) in try server.serveForever() }
    }

    private init(serveForever: @escaping @Sendable () throws(ServerError) -> Void) {
        _ = PThread { [self] in
            do { try serveForever() } catch let thrown { error.withLock { $0 = thrown as? ServerError } }
            done.withLock { $0 = true }
        }
    }

    var hasReturned: Bool { done.withLock { $0 } }

    /// Waits up to `timeout` seconds for serveForever to return.
    func join(timeout: Double = 10) -> Bool {
        waitUntil(timeout: timeout) { self.hasReturned }
    }
}

/// Polls `condition` every millisecond until it holds (true) or `timeout` seconds have passed on the
/// monotonic clock (false: the caller expects true, so a timeout fails the test).
func waitUntil(timeout: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = monotonicNow() + timeout
    while !condition() {
        if monotonicNow() >= deadline { return false }
        usleep(1000)
    }
    return true
}

/// A detached thread for tests.
struct PThread {
    init(_ body: @escaping @Sendable () -> Void) {
        final class Box { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
        var thread = pthread_t()
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        pthread_create(&thread, nil, { argument in
            Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue().body()
            return nil
        }, box)
        pthread_detach(thread)
    }
}

/// Open descriptors of this process.
func openDescriptorCount() -> Int {
    guard let directory = opendir("/proc/self/fd") else { return -1 }
    defer { closedir(directory) }
    var count = 0
    while readdir(directory) != nil { count += 1 }
    return count - 3  // ".", ".." and the directory's own descriptor
}

/// The kernel's id of the calling thread (its entry in /proc/self/task).
func currentThreadID() -> Int {
    var buffer = [CChar](repeating: 0, count: 64)
    let count = readlink("/proc/thread-self", &buffer, buffer.count - 1)  // "<pid>/task/<tid>"
    guard count > 0 else { return -1 }
    return Int(String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self).split(separator: "/").last!) ?? -1
}

/// Whether the thread with kernel id `id` still exists in this process.
func threadExists(_ id: Int) -> Bool { access("/proc/self/task/\(id)", F_OK) == 0 }

/// Threads of this process.
func threadCount() -> Int {
    guard let directory = opendir("/proc/self/task") else { return -1 }
    defer { closedir(directory) }
    var count = 0
    while readdir(directory) != nil { count += 1 }
    return count - 2
}

/// What handlers saw, in order, for the test to check (thread-safe).
final class Record: Sendable {
    let events = Lock<[String]>([])
    func add(_ event: String) { events.withLock { $0.append(event) } }
    var all: [String] { events.withLock { $0 } }
}

/// The loop's heartbeat, through the `serviceActions` hook: a server made with `hooks` and
/// `serviceActionsInterval = interval` calls it every 10 ms on its loop thread. `waitForTicks(n)` returns once
/// the loop has come round n more times, so whatever was pending for it before (a readable socket, work
/// queued from another thread) has been handled: the way to check that something did *not* happen without a
/// fixed sleep.
final class LoopTicks: Sendable {
    static let interval = 0.01
    private let counter = Counter()
    var hooks: ServerHooks { ServerHooks(serviceActions: { [counter] in counter.increment() }) }
    var count: Int { counter.count }
    /// Fails (returns false) if the loop does not come round `ticks` times within `timeout` seconds.
    func waitForTicks(_ ticks: Int = 3, timeout: Double = 5) -> Bool {
        let start = counter.count
        return waitUntil(timeout: timeout) { self.counter.count >= start + ticks }
    }
}

/// A thread-safe counter for hooks and handlers.
final class Counter: Sendable {
    private let value = Lock(0)
    func increment() { value.withLock { $0 += 1 } }
    var count: Int { value.withLock { $0 } }
}

/// The tests' servers wait at most this long in `handleRequest()` (unless a test sets its own `timeout`): a
/// server that never serves its one request then fails the test (`false`) instead of hanging the run.
let handleRequestBound = 30.0

/// A datagram server on `address` in `mode`, echoing unless another handler is given.
func makeDatagramServer(
    _ address: SocketAddress, mode: ExecutionMode, handler: DatagramHandler? = nil,
    hooks: ServerHooks = ServerHooks(), configure: (inout ServerConfiguration) -> Void = { _ in }
) throws -> DatagramServer {
    var configuration = ServerConfiguration(address: address, mode: mode)
    configuration.timeout = handleRequestBound
    configure(&configuration)
    return try DatagramServer(configuration: configuration, handler: handler ?? datagramEchoHandler(for: mode), hooks: hooks)
}

/// A gate that handlers (or the test) wait at until it is opened. A wait that outlasts its deadline throws
/// and is remembered (`expired`), so a test can never go on as if the gate had opened.
final class Gate: Sendable {
    private let isOpen = Lock(false)
    private let didExpire = Lock(false)
    func open() { isOpen.withLock { $0 = true } }
    func wait(timeout: Double = 10) throws {
        guard waitUntil(timeout: timeout, { self.isOpen.withLock { $0 } }) else {
            didExpire.withLock { $0 = true }
            throw TestFailure("the gate was not opened within \(timeout) s")
        }
    }
    /// True once a wait ran out of time.
    var expired: Bool { didExpire.withLock { $0 } }
}

/// Seconds on the monotonic clock.
func monotonicNow() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// Datagram echo that waits at `gate` before replying (blocking style).
final class GatedDatagramEcho: DatagramRequestHandler {
    let gate: Gate
    init(_ gate: Gate) { self.gate = gate }
    func handle(_ request: DatagramRequest) throws {
        try gate.wait()
        try request.reply(request.datagram)
    }
}
