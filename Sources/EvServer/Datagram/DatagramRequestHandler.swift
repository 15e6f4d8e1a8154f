/// A blocking, socketserver-style datagram handler (`setup`, `handle`, `finish`; see
/// `RequestHandlerPhases`), one handler object per datagram, run on a worker thread (or on the loop thread
/// in `.sync` mode).
///
/// Reply with `request.reply(_:)`; nothing is sent when the handler sends nothing (socketserver sends an
/// empty datagram then).
public protocol DatagramRequestHandler: RequestHandlerPhases where Request == DatagramRequest {}
