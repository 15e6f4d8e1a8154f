/// A job queued for the workers: the closure inside a struct, so that arrays and optionals hold it as it
/// is. A bare closure stored in one is re-abstracted: a thunk with a heap context of its own per job, and
/// one more each time it is taken out (three of pool mode's mallocs per connection).
struct WorkerJob: Sendable {
    let run: @Sendable () -> Void
}
