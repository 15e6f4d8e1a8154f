/// A task executor that runs jobs on an event loop's thread: async handlers started with it as their
/// executor preference run every step (and resume after every `await`) on the loop that owns their
/// connection, so a suspension costs no thread hop and the handler may use loop-confined objects.
///
/// Jobs go through `EventLoop.execute`, in order. Once the loop is gone, jobs are dropped (the server
/// waits for its tasks before it frees the loop; a handler that ignores cancellation past that is lost).
final class LoopExecutor: TaskExecutor {
    let loop: EventLoop

    init(loop: EventLoop) { self.loop = loop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { [self] in job.runSynchronously(on: asUnownedTaskExecutor()) }
    }
}
