/// The shape of socketserver's blocking handlers, shared by both transports (`StreamRequestHandler`,
/// `DatagramRequestHandler`): `setup`, `handle`, `finish`, one handler object per request.
///
/// The server calls `setup`; if it succeeds, `handle` and then `finish` (also when `handle` throws). The
/// first error thrown is reported once to the `handleError` hook.
public protocol RequestHandlerPhases: AnyObject {
    /// What the handler serves: a connection (`StreamRequest`) or a datagram (`DatagramRequest`).
    associatedtype Request
    /// Runs first; when it throws, neither `handle` nor `finish` runs.
    func setup(_ request: Request) throws
    /// Serves the request.
    func handle(_ request: Request) throws
    /// Runs after `handle`, also when it threw.
    func finish(_ request: Request) throws
}

extension RequestHandlerPhases {
    /// By default, nothing to set up.
    public func setup(_ request: Request) throws {}
    /// By default, nothing to finish.
    public func finish(_ request: Request) throws {}

    /// Runs the phases as socketserver does. - Returns: the first error thrown, to be reported once.
    func runPhases(on request: Request) -> (any Error)? {
        do {
            try setup(request)
        } catch {
            return error
        }
        var failure: (any Error)?
        do {
            try handle(request)
        } catch {
            failure = error
        }
        do {
            try finish(request)
        } catch {
            failure = failure ?? error
        }
        return failure
    }
}
