internal import CLibEv

/// Heap memory for many `ev_io` structs that never moves, for watchers made per connection: handed out
/// by `take()` and given back by `give(_:)`, carved from chunks of 64 that are kept for reuse, so a
/// connection's read watcher costs no allocation (a `WatcherMemory` and the `IOWatcher` owning it were two
/// per connection, and their frees and releases).
///
/// Owned by one `ConnectionTable` and confined to its loop's thread. Whoever takes a struct initialises it
/// (`ev_io_init`), points its `data` at itself, and stops it before giving it back; after that it must not
/// touch it again (another connection may have it). The chunks are freed with the slab, unless a struct
/// is still out then (a connection that never closed): they are left allocated, since libev might still
/// hold it.
final class WatcherSlab {
    private static let chunkSize = 64
    // Unchecked: loop-confined, short accesses only (a take and a give per connection).
    @exclusivity(unchecked) private var chunks: [UnsafeMutablePointer<ev_io>] = []
    @exclusivity(unchecked) private var free: [UnsafeMutablePointer<ev_io>] = []

    init() {}

    deinit {
        guard free.count == chunks.count * Self.chunkSize else { return }
        for chunk in chunks {
            chunk.deinitialize(count: Self.chunkSize)
            chunk.deallocate()
        }
    }

    /// A zeroed `ev_io` for one watcher.
    func take() -> UnsafeMutablePointer<ev_io> {
        if free.isEmpty {
            let chunk = UnsafeMutablePointer<ev_io>.allocate(capacity: Self.chunkSize)
            chunk.initialize(repeating: ev_io(), count: Self.chunkSize)
            chunks.append(chunk)
            free.reserveCapacity(chunks.count * Self.chunkSize)
            for index in (0..<Self.chunkSize).reversed() { free.append(chunk + index) }
        }
        let raw = free.removeLast()
        raw.initialize(to: ev_io())
        return raw
    }

    /// Takes back a struct from `take()`, which must be stopped (libev would go on using it otherwise).
    func give(_ raw: UnsafeMutablePointer<ev_io>) {
        precondition(CLibEv_ev_is_active(raw) == 0, "ev_io given back while active: stop it first")
        free.append(raw)
    }
}
