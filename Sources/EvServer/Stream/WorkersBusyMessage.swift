extension ServerConfiguration {
    /// Why every worker of a blocking mode is busy, with the setting to raise and what becomes of new clients
    /// (the acceptor's warning).
    var workersBusyMessage: String {
        switch mode {
        case .pool(let threads, let queueLimit):
            return """
                every pool worker is busy and its queue is full (\(threads) threads, queue \(queueLimit)); raise \
                --threads/--queue, or set --idle-timeout to free workers held by idle clients: new clients wait in \
                the kernel's backlog until one frees
                """
        default:
            return """
                thread mode runs its maximum of \(maximumThreads) threads (maximumThreads); \
                set --idle-timeout to free threads held by idle clients: new clients wait in the kernel's backlog \
                until one frees
                """
        }
    }
}
