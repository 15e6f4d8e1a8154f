internal import CLibEv

/// Heap memory for many `ev_io` structs that never moves, for watchers made per connection: handed out
/// by `take()` and given back by `give(_:)`, carved from chunks of 64 that are kept for reuse, so a
/// connection's read watcher costs no allocation (a `WatcherMemory` and the `IOWatcher` owning it were two
/// per connection, and their frees and releases).
///
/// The free structs form a list linked through their own `data` fields (a take and a give are a few loads
/// and stores: arrays of free pointers cost ~40 instructions a connection in uniqueness checks).
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
    /// The first free struct; each free struct's `data` points at the next (or is `nil`).
    @exclusivity(unchecked) private var firstFree: UnsafeMutablePointer<ev_io>?
    @exclusivity(unchecked) private var taken = 0

    init() {}

    deinit {
        guard taken == 0 else { return }
        for chunk in chunks {
            chunk.deinitialize(count: Self.chunkSize)
            chunk.deallocate()
        }
    }

    /// A zeroed `ev_io` for one watcher.
    func take() -> UnsafeMutablePointer<ev_io> {
        if firstFree == nil { addChunk() }
        let raw = firstFree.unsafelyUnwrapped
        firstFree = raw.pointee.data?.assumingMemoryBound(to: ev_io.self)
        raw.initialize(to: ev_io())
        taken &+= 1
        return raw
    }

    /// Takes back a struct from `take()`, which must be stopped (libev would go on using it otherwise).
    func give(_ raw: UnsafeMutablePointer<ev_io>) {
        precondition(CLibEv_ev_is_active(raw) == 0, "ev_io given back while active: stop it first")
        raw.pointee.data = UnsafeMutableRawPointer(firstFree)
        firstFree = raw
        taken &-= 1
    }

    private func addChunk() {
        let chunk = UnsafeMutablePointer<ev_io>.allocate(capacity: Self.chunkSize)
        chunk.initialize(repeating: ev_io(), count: Self.chunkSize)
        chunks.append(chunk)
        for index in (0..<Self.chunkSize).reversed() {
            chunk[index].data = UnsafeMutableRawPointer(firstFree)
            firstFree = chunk + index
        }
    }
}
