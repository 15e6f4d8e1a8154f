#if canImport(Glibc)
import Glibc
#endif

/// Where a server's blocking handlers run, by its execution mode: on the loop thread (`.sync`), on a thread
/// each (`.thread`), or on a pool (`.pool`). Event and async servers have none.
enum Workers: Sendable {
    case none
    case loopThread
    case threads(WorkerThreads)
    case pool(WorkerPool)

    /// What became of a job.
    enum Outcome {
        /// It ran on the calling (loop) thread.
        case ran
        /// A worker has it; when `hasRoom` is false the server must take no more work until `onRoom`.
        case started(hasRoom: Bool)
        /// The pool was full and the job was dropped (`whenFull: .drop`).
        case droppedFull
        /// The system could not start a thread for it; it did not run.
        case failed(SystemError)
    }

    /// What to do with a job when every worker is busy and the queue is full.
    enum WhenFull {
        /// Queue it anyway (the caller then stops taking work): nothing accepted is lost.
        case queue
        /// Drop it (datagrams: the caller cannot leave them in a kernel backlog).
        case drop
    }

    /// Makes the workers of `mode`; `onRoom` runs on a worker thread when room opens after a full.
    init(mode: ExecutionMode, maximumThreads: Int, onRoom: @escaping @Sendable () -> Void) throws(ServerError) {
        switch mode {
        case .event, .async: self = .none
        case .sync: self = .loopThread
        case .thread: self = .threads(WorkerThreads(maximum: maximumThreads, onRoom: onRoom))
        case .pool(let threads, let queueLimit):
            self = .pool(try WorkerPool(threads: threads, queueLimit: queueLimit, onRoom: onRoom))
        }
    }

    /// Runs `job` where this mode runs handlers.
    func run(_ job: @escaping @Sendable () -> Void, whenFull: WhenFull) -> Outcome {
        switch self {
        case .none: preconditionFailure("a blocking handler in event or async mode is rejected when the server is made")
        case .loopThread:
            job()
            return .ran
        case .threads(let threads):
            do {
                return .started(hasRoom: try threads.start(job))
            } catch {
                return .failed(error)
            }
        case .pool(let pool):
            switch whenFull {
            case .queue: return .started(hasRoom: pool.submit(job))
            case .drop: return pool.trySubmit(job) ? .started(hasRoom: true) : .droppedFull
            }
        }
    }

    /// Whether `thread` is one of the workers.
    func contains(_ thread: pthread_t) -> Bool {
        switch self {
        case .none, .loopThread: return false
        case .threads(let threads): return threads.contains(thread)
        case .pool(let pool): return pool.isWorker(thread)
        }
    }

    /// Lets the workers finish (the pool its queue too) and waits for them. Once, from `close()`.
    func stop() {
        switch self {
        case .none, .loopThread: return
        case .threads(let threads): threads.waitUntilNoneRun()
        case .pool(let pool): pool.shutdown()
        }
    }
}
