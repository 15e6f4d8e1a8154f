/// A blocking, socketserver-style handler: `setup`, `handle`, `finish`, one handler object per connection,
/// run on a worker thread (or the loop thread in `.sync` mode).
///
/// The server calls `setup`; if it succeeds, `handle` and then `finish` (also when `handle` throws). The
/// first error thrown is reported once to the `handleError` hook. The connection is closed after
/// `finish`.
public protocol StreamRequestHandler: AnyObject {
    func setup(_ request: StreamRequest) throws
    func handle(_ request: StreamRequest) throws
    func finish(_ request: StreamRequest) throws
}

extension StreamRequestHandler {
    public func setup(_ request: StreamRequest) throws {}
    public func finish(_ request: StreamRequest) throws {}
}
