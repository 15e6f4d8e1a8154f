/// A blocking, socketserver-style datagram handler: `setup`, `handle`, `finish`, one handler object per
/// datagram, run on a worker thread (or on the loop thread in `.sync` mode).
///
/// Reply with `request.reply(_:)`; nothing is sent when the handler sends nothing (socketserver sends an
/// empty datagram then). Errors are reported as for `StreamRequestHandler`.
public protocol DatagramRequestHandler: AnyObject {
    func setup(_ request: DatagramRequest) throws
    func handle(_ request: DatagramRequest) throws
    func finish(_ request: DatagramRequest) throws
}

extension DatagramRequestHandler {
    public func setup(_ request: DatagramRequest) throws {}
    public func finish(_ request: DatagramRequest) throws {}
}
