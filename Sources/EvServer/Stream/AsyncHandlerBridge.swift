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
        task = context.asyncTasks.start { [makeHandler, context] in
            do {
                try await makeHandler().handle(asyncConnection)
            } catch let error as ConnectionError where error.code == .closed {
                // The server closed the connection: nothing to report.
            } catch is CancellationError {
            } catch {
                asyncConnection.connection.tally.note(.handlerError)
                context.reportHandlerError(error, client: asyncConnection.clientAddress)
            }
            asyncConnection.close()
        }
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
