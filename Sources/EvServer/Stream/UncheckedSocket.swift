/// A socket handed from the loop thread to the worker that will own it.
///
/// `@unchecked Sendable`: ownership moves with the job; the loop thread never touches the socket again.
struct UncheckedSocket: @unchecked Sendable {
    let socket: Socket
    init(_ socket: Socket) { self.socket = socket }
}
