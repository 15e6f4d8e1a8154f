/// Runs an async handler on a connection: the event-mode connection's callbacks feed its
/// `AsyncConnection`, and its task runs on the loop's executor.
///
/// Loop-confined, like the connection whose handler it is; the handler crosses into its task as a
/// `LoopBound`, as the task runs on the same loop.
final class AsyncHandlerBridge: StreamEventHandler {
    private let makeHandler: @Sendable () -> any StreamAsyncHandler
    private let context: ServerContext
    // Unchecked exclusivity: loop-confined, and no access outlives a call.
    @exclusivity(unchecked) private var asyncConnection: AsyncConnection?
    @exclusivity(unchecked) private var task: Task<Void, Never>?
    /// A handler that starts on input (`startsOnInput`), until its connection's first input or end of input
    /// starts its task.
    @exclusivity(unchecked) private var waitingHandler: (any StreamAsyncHandler)?

    init(makeHandler: @escaping @Sendable () -> any StreamAsyncHandler, context: ServerContext) {
        self.makeHandler = makeHandler
        self.context = context
    }

    func connectionOpened(_ connection: StreamConnection) throws {
        let handler = makeHandler()
        if handler.startsOnInput {
            waitingHandler = handler
        } else {
            start(handler, on: makeAsyncConnection(connection))
        }
    }

    private func makeAsyncConnection(_ connection: StreamConnection) -> AsyncConnection {
        let asyncConnection = AsyncConnection(connection: connection, configuration: context.configuration)
        self.asyncConnection = asyncConnection
        return asyncConnection
    }

    /// Starts the handler's task at once, inside this callback, until it first waits.
    private func start(_ handler: any StreamAsyncHandler, on asyncConnection: AsyncConnection) {
        let handler = LoopBound(handler, loop: context.loop)
        let task = context.asyncTasks.startNow { [context] in
            do {
                try await handler.value.handle(asyncConnection)
            } catch {
                Self.report(error, of: asyncConnection, to: context)
            }
            asyncConnection.close()
            context.asyncTasks.ended()
        }
        // When its handler is done before it first waits, the connection may be closed already
        // (`connectionClosed` ran), and the task is not kept.
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
        if let handler = waitingHandler {
            waitingHandler = nil
            let asyncConnection = makeAsyncConnection(connection)
            asyncConnection.receivedFirst(bytes) { start(handler, on: asyncConnection) }
        } else {
            asyncConnection?.received(bytes)
        }
    }

    func connectionInputEnded(_ connection: StreamConnection) throws {
        if let handler = waitingHandler {
            waitingHandler = nil
            let asyncConnection = makeAsyncConnection(connection)
            asyncConnection.inputDidEnd()
            start(handler, on: asyncConnection)
        } else {
            asyncConnection?.inputDidEnd()
        }
    }

    func connectionWritable(_ connection: StreamConnection) throws {
        asyncConnection?.writable()
    }

    func connectionClosed(_ connection: StreamConnection, error: ConnectionError?) {
        waitingHandler = nil  // closed before its first input: the handler never runs
        asyncConnection?.closed(error)
        task?.cancel()
        // Breaks the cycle connection -> bridge -> async connection -> connection; the task keeps the async
        // connection until it ends.
        asyncConnection = nil
        task = nil
    }
}
