/// What the servers of a `ServerGroup` share so that handlers on different loops can talk to each other:
/// the members (weakly: a closed member may go), each giving its connections ids in its own range.
///
/// `@unchecked Sendable`: `members` is behind a `Lock`; it is filled while the group is made and read after.
final class ConnectionRouter: @unchecked Sendable {
    private struct Member { weak var server: StreamServer? }
    private let members = Lock<[Member]>([])

    /// Bits of a `ConnectionID` that number the connection within its member; the bits above name the member.
    static let memberShift: UInt64 = 48

    func add(_ server: StreamServer) { members.withLock { $0.append(Member(server: server)) } }

    /// The member whose connection `id` is.
    func owner(of id: ConnectionID) -> StreamServer? {
        let index = Int(id >> ConnectionRouter.memberShift)
        return members.withLock { index < $0.count ? $0[index].server : nil }
    }

    var servers: [StreamServer] { members.withLock { $0.compactMap(\.server) } }
}
