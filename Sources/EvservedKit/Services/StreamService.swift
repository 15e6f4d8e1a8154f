import EvServer

/// The one definition of a built-in service's behaviour on a connection, whatever the execution mode: what
/// it sends when the connection opens and for each piece of input, and when it closes. `ServiceEventHandler`,
/// `ServiceRequestHandler` and `ServiceAsyncHandler` run it in the event, blocking and async modes, so a
/// client sees the same bytes, framing and close in every mode.
///
/// Input is answered as it arrives, whatever its framing (a message without a newline gets its answer);
/// nothing is held back, so nothing is owed at a timeout or at the end of input. The end of input closes
/// the connection once the replies are sent.
///
/// A service object serves one connection. In event mode it is the connection's handler itself (each
/// service conforms to `StreamEventHandler` through the extension below, which is specialised for it: no
/// generic adapter on the hot path); `ServiceRequestHandler` and `ServiceAsyncHandler` run it in the other
/// modes.
protocol StreamService: AnyObject, SendableMetatype {
    init()
    /// The connection opened (`maximumLineLength` bounds the lines of line-oriented services): sends a
    /// greeting, if any. - Returns: whether to close now (after it).
    func opened(maximumLineLength: Int, send: (UnsafeRawBufferPointer) throws -> Void) rethrows -> Bool
    /// Input arrived. - Returns: whether to close now (after what it sent).
    func received(_ bytes: UnsafeRawBufferPointer, send: (UnsafeRawBufferPointer) throws -> Void) rethrows -> Bool
    /// Services that send without being asked (chargen): the next piece, sent whenever the client can take
    /// more, until it goes away; their input is ignored. `nil` for the others.
    static var endlessOutput: [UInt8]? { get }
    /// Whether `opened` may send (a greeting, daytime's line): such a service starts serving when the
    /// connection opens in every mode; the others wait in async mode for the client's first input
    /// (`StreamAsyncHandler.startsOnInput`), so that an idle connection holds no task.
    static var speaksFirst: Bool { get }
}

extension StreamService {
    func opened(maximumLineLength: Int, send: (UnsafeRawBufferPointer) throws -> Void) rethrows -> Bool { false }
    func received(_ bytes: UnsafeRawBufferPointer, send: (UnsafeRawBufferPointer) throws -> Void) rethrows -> Bool {
        false
    }
    static var endlessOutput: [UInt8]? { nil }
    static var speaksFirst: Bool { false }
}

/// Event mode: the service is the connection's event handler. Replies are queued on the connection as they
/// are produced, never blocking; an endless service writes while the connection is writable.
extension StreamEventHandler where Self: StreamService {
    func connectionOpened(_ connection: StreamConnection) {
        if opened(maximumLineLength: connection.maximumLineLength, send: { connection.write($0) }) {
            connection.close()
        } else {
            produce(connection)
        }
    }

    func connection(_ connection: StreamConnection, received bytes: UnsafeRawBufferPointer) {
        guard Self.endlessOutput == nil, received(bytes, send: { connection.write($0) }) else { return }
        connection.close()
    }

    func connectionWritable(_ connection: StreamConnection) { produce(connection) }

    private func produce(_ connection: StreamConnection) {
        guard let output = Self.endlessOutput else { return }
        while connection.isWritable { connection.write(output) }
    }
}

extension [UInt8] {
    /// Runs `body` with the bytes as a raw buffer (a service's `send`).
    func send(through body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        try withUnsafeBytes(body)
    }
}
