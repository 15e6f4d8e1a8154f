/// A blocking, socketserver-style connection handler (`setup`, `handle`, `finish`; see
/// `RequestHandlerPhases`), run on a worker thread (or the loop thread in `.sync` mode). The connection is
/// closed after `finish`.
public protocol StreamRequestHandler: RequestHandlerPhases where Request == StreamRequest {}
