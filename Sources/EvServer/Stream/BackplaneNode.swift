import Dispatch

/// One server group as a `ConnectionBackplane` sees it: its node number, the loop of its first server (where
/// a backplane may run its own I/O: no loop of its own), and local delivery of what other nodes send.
///
/// `@unchecked Sendable`: everything is immutable after `init`; `router` and `blockingWrites` are thread-safe.
public final class BackplaneNode: @unchecked Sendable {
    /// The number in the high bits of the group's connection ids.
    public let number: UInt32
    /// The loop of the group's first server, running from the node's attach until its detach.
    package let loop: EventLoop
    private let router: ConnectionRouter
    /// Blocking connections are written by the delivering thread; this queue is that thread, so that a slow
    /// blocking client never stalls the loop the backplane runs on. Serial: order per receiver is kept.
    private let blockingWrites = DispatchQueue(label: "evserver-backplane")

    init(number: UInt32, loop: EventLoop, router: ConnectionRouter) {
        self.number = number
        self.loop = loop
        self.router = router
    }

    /// Delivers `message` from another node to this group's connections (its own echo is ignored). Any
    /// thread; never blocks.
    public func deliver(_ message: BackplaneMessage) {
        guard message.origin != number else { return }
        switch message.target {
        case .connection(let id):
            guard ConnectionIDSpace.node(of: id) == number, let server = router.owner(of: id) else { return }
            server.sendLocally(message.bytes, to: id, blockingWrites: blockingWrites)
        case .broadcast(let topic, let except):
            for server in router.servers {
                server.broadcastLocally(message.bytes, topic: topic, except: except, blockingWrites: blockingWrites)
            }
        }
    }

}
