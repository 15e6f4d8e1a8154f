/// A task executor that runs jobs on an event loop's thread: async handlers started with it as their
/// executor preference run every step (and resume after every `await`) on the loop that owns their
/// connection, so a suspension costs no thread hop and the handler may use loop-confined objects.
///
/// A job enqueued on the loop thread goes to `EventLoop.runInLoop`: a handler resumed by an async
/// connection's I/O callback runs at once, inside the callback (`EventLoop.resumeInline`), and other jobs
/// wait for the end of the callback in the in-loop queue (no lock, allocation or syscall either way); a job
/// from another thread goes through `EventLoop.execute`. Once the loop is gone, jobs are dropped (the server
/// waits for its tasks before it frees the loop; a handler that ignores cancellation past that is lost).
final class LoopExecutor: TaskExecutor {
    let loop: EventLoop

    init(loop: EventLoop) { self.loop = loop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        if loop.inLoop {
            loop.runInLoop(job, on: asUnownedTaskExecutor())
        } else {
            loop.execute { [self] in job.runSynchronously(on: asUnownedTaskExecutor()) }
        }
    }
}
