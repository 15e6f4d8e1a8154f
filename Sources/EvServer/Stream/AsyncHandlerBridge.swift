/// Runs an async handler on a connection: the event-mode connection's callbacks feed its
/// `AsyncConnection`, and its task runs on the loop's executor.
final class AsyncHandlerBridge: StreamEventHandler {
    private let makeHandler: @Sendable () -> any StreamAsyncHandler
    private let context: ServerContext
    // Unchecked exclusivity: loop-confined, and no access outlives a call.
    @exclusivity(unchecked) private var asyncConnection: AsyncConnection?
    @exclusivity(unchecked) private var task: Task<Void, Never>?

    init(makeHandler: @escaping @Sendable () -> any StreamAsyncHandler, context: ServerContext) {
        self.makeHandler = makeHandler
        self.context = context
    }

    func connectionOpened(_ connection: StreamConnection) throws {
        let asyncConnection = AsyncConnection(connection: connection, configuration: context.configuration)
        self.asyncConnection = asyncConnection
        let task = context.asyncTasks.startNow { [makeHandler, context] in
            do {
                try await makeHandler().handle(asyncConnection)
            } catch {
                Self.report(error, of: asyncConnection, to: context)
            }
            asyncConnection.close()
            context.asyncTasks.ended()
        }
        // The task starts at once: when its handler is done before it first waits, the connection may be
        // closed already (`connectionClosed` ran), and the task is not kept.
        if self.asyncConnection != nil { self.task = task }
    }

    /// Reports what the handler threw, unless it is the connection closing under it. (Out of the task's
    /// closure, so that its async frame, held while the connection is idle, stays small.)
    private static func report(_ error: any Error, of asyncConnection: AsyncConnection, to context: ServerContext) {
        if let error = error as? ConnectionError, error.code == .closed { return }  // the server closed it
        if error is CancellationError { return }
        asyncConnection.connection.tally.note(.handlerError)
        context.reportHandlerError(error, client: asyncConnection.clientAddress)
    }

    func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) throws {
        asyncConnection?.received(bytes)
    }

    func connectionInputEnded(_ connection: StreamConnection) throws {
        asyncConnection?.inputDidEnd()
    }

    func connectionWritable(_ connection: StreamConnection) throws {
        asyncConnection?.writable()
    }

    func connectionClosed(_ connection: StreamConnection, error: ConnectionError?) {
        asyncConnection?.closed(error)
        task?.cancel()
        // Breaks the cycle connection -> bridge -> async connection -> connection; the task keeps the async
        // connection until it ends.
        asyncConnection = nil
        task = nil
    }
}
