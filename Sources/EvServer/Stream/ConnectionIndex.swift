/// The open connections of one server keyed by id: an open-addressing table (linear probing, at most half
/// full) whose bucket is the id's low bits. A member's ids count up one by one, so those bits spread them
/// evenly without a hash function: a `Dictionary` spent ~280 instructions a connection hashing the id
/// (SipHash), and about as much again inserting and removing.
///
/// Loop-confined, a value owned by the `ConnectionRegistry` (generic for its tests; specialised for
/// `StreamConnection` in the module).
struct ConnectionIndex<Connection: IdentifiedConnection> {
    private var buckets: ContiguousArray<Connection?>
    private var mask: Int
    private(set) var count = 0

    init() {
        buckets = ContiguousArray(repeating: nil, count: 16)
        mask = 15
    }

    /// The connection with `id`, if open.
    subscript(id: ConnectionID) -> Connection? {
        var index = Int(truncatingIfNeeded: id) & mask
        while let connection = buckets[index] {
            if connection.id == id { return connection }
            index = (index + 1) & mask
        }
        return nil
    }

    /// Adds `connection` (its id is not in the table).
    mutating func insert(_ connection: Connection) {
        if (count + 1) * 2 > buckets.count { grow() }
        var index = Int(truncatingIfNeeded: connection.id) & mask
        while buckets[index] != nil { index = (index + 1) & mask }
        buckets[index] = connection
        count += 1
    }

    /// Removes the connection with `id`, if there: the entries after it in its run move back into the
    /// gap (so lookups need no tombstones).
    mutating func remove(_ id: ConnectionID) {
        var gap = Int(truncatingIfNeeded: id) & mask
        while true {
            guard let connection = buckets[gap] else { return }
            if connection.id == id { break }
            gap = (gap + 1) & mask
        }
        buckets[gap] = nil
        count -= 1
        var index = (gap + 1) & mask
        while let connection = buckets[index] {
            let home = Int(truncatingIfNeeded: connection.id) & mask
            // Moves back when its home is not in the cyclic range (gap, index].
            if (index - home) & mask >= (index - gap) & mask {
                buckets[gap] = connection
                buckets[index] = nil
                gap = index
            }
            index = (index + 1) & mask
        }
    }

    /// Every open connection.
    var all: [Connection] { buckets.compactMap { $0 } }

    mutating func removeAll() {
        buckets = ContiguousArray(repeating: nil, count: 16)
        mask = 15
        count = 0
    }

    private mutating func grow() {
        let old = buckets
        buckets = ContiguousArray(repeating: nil, count: old.count * 2)
        mask = buckets.count - 1
        count = 0
        for case let connection? in old { insert(connection) }
    }
}

/// An object with a connection id, as `ConnectionIndex` keys it.
protocol IdentifiedConnection: AnyObject {
    var id: ConnectionID { get }
}

extension StreamConnection: IdentifiedConnection {}
