import EvServer

/// The one definition of a built-in service's behaviour on a connection, whatever the execution mode: what
/// it sends when the connection opens and for each piece of input, and when it closes. `ServiceEventHandler`,
/// `ServiceRequestHandler` and `ServiceAsyncHandler` run it in the event, blocking and async modes, so a
/// client sees the same bytes, framing and close in every mode.
///
/// Input is answered as it arrives, whatever its framing (a message without a newline gets its answer);
/// nothing is held back, so nothing is owed at a timeout or at the end of input. The end of input closes
/// the connection once the replies are sent.
protocol StreamService: SendableMetatype {
    /// A fresh session; `maximumLineLength` bounds the lines of line-oriented services.
    init(maximumLineLength: Int)
    /// The connection opened: sends a greeting, if any. - Returns: whether to close now (after it).
    mutating func opened(send: (UnsafeRawBufferPointer) throws -> Void) rethrows -> Bool
    /// Input arrived. - Returns: whether to close now (after what it sent).
    mutating func received(_ bytes: UnsafeRawBufferPointer, send: (UnsafeRawBufferPointer) throws -> Void) rethrows -> Bool
    /// Services that send without being asked (chargen): the next piece, sent whenever the client can take
    /// more, until it goes away; their input is ignored. `nil` for the others.
    static var endlessOutput: [UInt8]? { get }
}

extension StreamService {
    mutating func opened(send: (UnsafeRawBufferPointer) throws -> Void) rethrows -> Bool { false }
    mutating func received(_ bytes: UnsafeRawBufferPointer, send: (UnsafeRawBufferPointer) throws -> Void) rethrows -> Bool {
        false
    }
    static var endlessOutput: [UInt8]? { nil }
}

extension [UInt8] {
    /// Runs `body` with the bytes as a raw buffer (a service's `send`).
    func send(through body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        try withUnsafeBytes(body)
    }
}
