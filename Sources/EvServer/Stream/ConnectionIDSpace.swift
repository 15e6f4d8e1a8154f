/// How a `ConnectionID` is made, so that ids stay unique across the loops of a `ServerGroup`, between its
/// event and blocking connections, and, with a `ConnectionBackplane`, across every process and host that
/// shares it. From the top bit down:
///
/// | bits  | width | what                                                                                  |
/// |-------|-------|---------------------------------------------------------------------------------------|
/// | 63-44 | 20    | node: the server group's number on the backplane (0 without one: this process only)   |
/// | 43-34 | 10    | member: the loop's index in its group (0 for a lone server; up to 1024 loops)         |
/// | 33    | 1     | blocking: set for the connections of blocking handlers (`StreamRequest.id`)            |
/// | 32-0  | 33    | number: counts the member's connections from 1 (8.6 billion before it wraps)           |
///
/// The backplane gives each group its node number (1 to 2^20 - 1; `ConnectionBackplane.makeNodeNumber()`):
/// Redis's from a counter on the server, unique across every process and host; two groups with the same
/// number would take each other's direct sends and ignore each other's broadcasts as echoes.
public enum ConnectionIDSpace {
    /// Bits of the node number.
    public static let nodeBits: UInt64 = 20
    /// Where the node number starts.
    public static let nodeShift: UInt64 = 44
    /// Where the member index starts.
    static let memberShift: UInt64 = 34
    /// Bits of the member index: a group has at most 1024 loops.
    static let memberBits: UInt64 = 10
    /// The bit set in blocking connections' ids.
    static let blockingBit: UInt64 = 1 << 33
    /// The largest connection number before it wraps to 1.
    static let largestNumber: UInt64 = (1 << 33) - 1

    /// The largest node number.
    public static let largestNode: UInt32 = (1 << 20) - 1

    /// The first id of a member's connections: `number` 1 of `member` in `node`, blocking or not.
    static func firstID(node: UInt32, member: Int, blocking: Bool) -> ConnectionID {
        precondition(UInt64(member) < 1 << memberBits, "a server group has at most 1024 members")
        precondition(node <= largestNode, "node numbers have 20 bits")
        return UInt64(node) << nodeShift | UInt64(member) << memberShift | (blocking ? blockingBit : 0) | 1
    }

    /// The id after `id` within its member, wrapping its number from `largestNumber` to 1.
    static func next(after id: ConnectionID) -> ConnectionID {
        id & largestNumber == largestNumber ? id & ~largestNumber | 1 : id + 1
    }

    /// The node number of `id` (0: a connection of a group without a backplane).
    public static func node(of id: ConnectionID) -> UInt32 { UInt32(id >> nodeShift) }

    /// The member (loop) index of `id` within its group.
    static func member(of id: ConnectionID) -> Int { Int(id >> memberShift & (1 << memberBits - 1)) }

    /// Whether `id` is a blocking handler's connection.
    static func isBlocking(_ id: ConnectionID) -> Bool { id & blockingBit != 0 }
}
