/// A blocking handler's connection on its way to the loop (`StreamRequest.handOff(to:)`): the event handler
/// that takes it over there.
///
/// `@unchecked Sendable`: made on the worker thread and passed once to the loop thread, after which only
/// the loop uses the handler (the worker that made it never touches it again).
struct HandOff: @unchecked Sendable {
    let handler: any StreamEventHandler
}

/// A connection handed to the loop: its socket, the input the blocking handler had read but not taken,
/// and whether the client had ended its input.
///
/// `@unchecked Sendable`: ownership of the socket moves with it from the worker to the loop thread.
struct HandedOffConnection: @unchecked Sendable {
    let socket: Socket
    let peer: SocketAddress
    let unread: [UInt8]
    let inputEnded: Bool
    let successor: HandOff
    /// The figures of the blocking phase: the connection's summary covers its whole life.
    let tally: ConnectionTally
}
