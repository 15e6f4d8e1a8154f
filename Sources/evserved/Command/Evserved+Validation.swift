import ArgumentParser

extension Evserved {
    /// Problems between the option groups, once each value has been read: every one is a `FlagValueError`,
    /// so it exits with status 1 and one line, like a bad value.
    func validate() throws {
        try observability.validate(workers: listeners.workers)  // --metrics-listen with --workers
        try registry.validateChat(listeners)  // chat with --workers needs --registry; chat is stream only
        try exec.validate(against: listeners)  // the program runs, and some listener runs it
    }
}
