/// The open connections of one server keyed by id: an open-addressing table (linear probing, at most half
/// full) whose bucket is the id's low bits. A member's ids count up one by one, so those bits spread them
/// evenly without a hash function: a `Dictionary` spent ~280 instructions a connection hashing the id
/// (SipHash), and about as much again inserting and removing.
///
/// A class over memory it allocates itself: an array's uniqueness check and end-of-mutation call on every
/// insert and remove were ~60 instructions a connection.
///
/// Loop-confined, owned by the `ConnectionRegistry` (generic for its tests; specialised for
/// `StreamConnection` in the module).
final class ConnectionIndex<Connection: IdentifiedConnection> {
    // Unchecked: loop-confined, short accesses only.
    @exclusivity(unchecked) private var buckets: UnsafeMutablePointer<Connection?>
    @exclusivity(unchecked) private var mask: Int
    @exclusivity(unchecked) private(set) var count = 0

    init() {
        buckets = Self.emptyBuckets(16)
        mask = 15
    }

    deinit {
        buckets.deinitialize(count: mask + 1)
        buckets.deallocate()
    }

    private static func emptyBuckets(_ count: Int) -> UnsafeMutablePointer<Connection?> {
        let buckets = UnsafeMutablePointer<Connection?>.allocate(capacity: count)
        buckets.initialize(repeating: nil, count: count)
        return buckets
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
    func insert(_ connection: Connection) {
        if (count + 1) * 2 > mask + 1 { grow() }
        var index = Int(truncatingIfNeeded: connection.id) & mask
        while buckets[index] != nil { index = (index + 1) & mask }
        buckets[index] = connection
        count += 1
    }

    /// Removes the connection with `id`, if there: the entries after it in its run move back into the
    /// gap (so lookups need no tombstones).
    func remove(_ id: ConnectionID) {
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
                buckets[gap] = buckets[index].take()
                gap = index
            }
            index = (index + 1) & mask
        }
    }

    /// Every open connection.
    var all: [Connection] { UnsafeBufferPointer(start: buckets, count: mask + 1).compactMap { $0 } }

    func removeAll() {
        replaceBuckets(count: 16)
        count = 0
    }

    private func grow() {
        let (old, oldCount) = (buckets, mask + 1)
        buckets = Self.emptyBuckets(oldCount * 2)
        mask = oldCount * 2 - 1
        count = 0
        for index in 0..<oldCount {
            if let connection = old[index].take() { insert(connection) }
        }
        old.deinitialize(count: oldCount)
        old.deallocate()
    }

    private func replaceBuckets(count: Int) {
        buckets.deinitialize(count: mask + 1)
        buckets.deallocate()
        buckets = Self.emptyBuckets(count)
        mask = count - 1
    }
}

/// An object with a connection id, as `ConnectionIndex` keys it.
protocol IdentifiedConnection: AnyObject {
    var id: ConnectionID { get }
}

extension StreamConnection: IdentifiedConnection {}
