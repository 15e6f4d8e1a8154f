/// What the servers of a `ServerGroup` share so that handlers on different loops can talk to each other:
/// the members (weakly: a closed member may go), each giving its connections ids in its own range, and the
/// group's node on a `ConnectionBackplane`, if any (`ConnectionIDSpace`).
///
/// `@unchecked Sendable`: `members` and `node` are behind `Lock`s; the rest is immutable.
final class ConnectionRouter: @unchecked Sendable {
    private struct Member { weak var server: StreamServer? }
    private let members = Lock<[Member]>([])
    /// Where messages for other nodes go; `nil`: this process only.
    let backplane: (any ConnectionBackplane)?
    /// The group's node number (0 without a backplane).
    let nodeNumber: UInt32
    private let attachedNode = Lock<BackplaneNode?>(nil)

    init(backplane: (any ConnectionBackplane)?) {
        self.backplane = backplane
        nodeNumber = backplane?.makeNodeNumber() ?? 0
    }

    func add(_ server: StreamServer) { members.withLock { $0.append(Member(server: server)) } }

    /// The member whose connection `id` is.
    func owner(of id: ConnectionID) -> StreamServer? {
        let index = ConnectionIDSpace.member(of: id)
        return members.withLock { index < $0.count ? $0[index].server : nil }
    }

    var servers: [StreamServer] { members.withLock { $0.compactMap(\.server) } }

    /// Attaches the group to its backplane on the loop of its first server.
    func attachNode(loop: EventLoop) {
        guard let backplane else { return }
        let node = BackplaneNode(number: nodeNumber, loop: loop, router: self)
        attachedNode.withLock { $0 = node }
        backplane.attach(node)
    }

    /// The first server's loop is closing (on that loop's thread): the backplane lets go of the node.
    func detachNode(loop: EventLoop) {
        guard let backplane, let node = attachedNode.withLock({ $0 }), node.loop === loop else { return }
        attachedNode.withLock { $0 = nil }
        backplane.detach(node)
    }

    /// Whether `id` is a connection of another node, reached through the backplane.
    func isRemote(_ id: ConnectionID) -> Bool { backplane != nil && ConnectionIDSpace.node(of: id) != nodeNumber }
}
