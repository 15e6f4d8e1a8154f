/// Carries `StreamServer.send(_:to:)` and `broadcast(_:topic:except:)` beyond this process, so that handlers
/// talk to the connections of every process and host that shares the backplane (a chat whose clients are
/// spread over several daemons behind a load balancer).
///
/// Without one (the `backplane:` of `StreamServer` and `ServerGroup.streamServers` is `nil`, the default)
/// the registry is the process's own: a server, or a `ServerGroup`'s loops, reach their own connections
/// only. With one, each server group is a *node*: its connection ids carry the node's number
/// (`ConnectionIDSpace`), so an id names the node that holds it. Delivery stays local first: `send` to a
/// local id and the local part of `broadcast` never touch the backplane, and keep working while it is away;
/// the backplane gets what other nodes need, and hands what it hears from them to `BackplaneNode.deliver`,
/// which drops a node's own echo.
///
/// Guarantees an implementation should give (the Redis one, `EvServerRedis`, does): messages of one sender
/// arrive in the order sent; delivery across nodes is at most once, and what is lost while the transport is
/// away is counted and logged, never retried later out of order.
public protocol ConnectionBackplane: AnyObject, Sendable {
    /// A node number for a new server group: 1 to `ConnectionIDSpace.largestNode`, not used by another
    /// group of this process nor, as far as the backplane can tell, by any other node. Any thread but a
    /// loop's (it may ask the backplane's server).
    func makeNodeNumber() -> UInt32

    /// The server group of `node` is made: deliver what other nodes send it with `node.deliver(_:)`. Called
    /// once per group, from the thread that makes its first server, before that server serves.
    func attach(_ node: BackplaneNode)

    /// The group's first server is closing: called on `node`'s loop thread just before that loop stops for
    /// good. The backplane stops delivering to the node, and stops using its loop if it ran there.
    func detach(_ node: BackplaneNode)

    /// Sends `message` to the other nodes. Any thread or task; never blocks; in order per calling thread.
    func publish(_ message: BackplaneMessage)
}

/// What a node hands the backplane: `send(_:to:)` to another node's connection, or a `broadcast`.
public struct BackplaneMessage: Sendable, Equatable {
    /// Who gets it.
    public enum Target: Sendable, Equatable {
        /// One connection (`send(_:to:)`), on the node its id names.
        case connection(ConnectionID)
        /// Every connection, or those that joined `topic`, except `except` (`broadcast`).
        case broadcast(topic: String?, except: ConnectionID?)
    }

    /// Whom it is for.
    public var target: Target
    /// The node that sent it: that node delivered it locally already and ignores it coming back.
    public var origin: UInt32
    /// What the connections are sent, as given to `send` or `broadcast`.
    public var bytes: [UInt8]

    /// A message for `target`, sent by node `origin`.
    public init(target: Target, origin: UInt32, bytes: [UInt8]) {
        self.target = target
        self.origin = origin
        self.bytes = bytes
    }
}
