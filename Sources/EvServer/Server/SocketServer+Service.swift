import ServiceLifecycle

extension TransportServer {
    /// Serves as a swift-service-lifecycle `Service`: starts (unless `start()` already did), then serves
    /// until the service group shuts down gracefully (the server then stops taking work and drains for
    /// `gracefulShutdownTimeout` seconds, as `shutdownGracefully(timeout:)` does) or the task is cancelled
    /// (the server closes at once). Returns once the server is closed.
    ///
    /// ```swift
    /// let group = ServiceGroup(services: [server], gracefulShutdownSignals: [.sigterm], logger: logger)
    /// try await group.run()
    /// ```
    public func run() async throws {
        do {
            try start()
        } catch {
            // Started by its owner before the group ran it: serve on.
            guard error.code == .alreadyServing else { throw error }
        }
        let timeout = configuration.gracefulShutdownTimeout
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await engine.lifecycle.waitUntilClosed()
            } onGracefulShutdown: {
                PosixThread.spawnDetachedOrRunHere(name: "evserver-drain") {
                    self.shutdownGracefully(timeout: timeout)
                }
            }
        } onCancel: {
            PosixThread.spawnDetachedOrRunHere(name: "evserver-close") { self.close() }
        }
    }
}
