import EvServer

/// One connection to evserved's metrics endpoint, event-driven: collects the request's head, answers it
/// (see `MetricsHTTP`) and closes. A head longer than `MetricsHTTP.longestHead`, or input that ends before
/// the head does, is answered 400.
public final class MetricsHTTPHandler: StreamEventHandler {
    private let body: @Sendable () -> [UInt8]
    private var head: [UInt8] = []
    private var answered = false

    /// `body` renders the metrics text at each request.
    public init(body: @escaping @Sendable () -> [UInt8]) {
        self.body = body
    }

    public func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) {
        guard !answered else { return }
        head.append(contentsOf: bytes)
        if let length = MetricsHTTP.headLength(head) {
            answer(connection, Array(head[..<length]))
        } else if head.count > MetricsHTTP.longestHead {
            answer(connection, nil)
        }
    }

    public func connectionInputEnded(_ connection: StreamConnection) {
        if !answered { answer(connection, nil) }
        connection.close()
    }

    private func answer(_ connection: StreamConnection, _ head: [UInt8]?) {
        answered = true
        self.head = []
        connection.write(MetricsHTTP.response(to: head, body: body))
        connection.close()
    }
}
