internal import CLibEv

/// The heap memory of one libev watcher struct (`ev_io`, `ev_timer`), owned by the Swift watcher object
/// that libev calls back: it never moves, and its `data` field holds the owner unretained (the owner keeps
/// itself alive while started, see `EventLoop`).
///
/// `free()` (from the owner's `deinit`) traps while libev still holds the watcher: libev would go on using
/// freed memory.
struct WatcherMemory<Raw> {
    let raw: UnsafeMutablePointer<Raw>

    /// Allocates `empty` (a zeroed struct); `initialize` then runs libev's `*_init` on it.
    init(_ empty: Raw, initialize: (UnsafeMutablePointer<Raw>) -> Void) {
        raw = .allocate(capacity: 1)
        raw.initialize(to: empty)
        initialize(raw)
    }

    /// Points the watcher's `data` at its owner (unretained), once the owner is initialised.
    func attach(owner: AnyObject) {
        CLibEv_ev_set_data(raw, Unmanaged.passUnretained(owner).toOpaque())
    }

    var isActive: Bool { CLibEv_ev_is_active(raw) != 0 }

    func free(kind: StaticString) {
        precondition(!isActive, "\(kind) freed while active: stop() it first")
        raw.deinitialize(count: 1)
        raw.deallocate()
    }
}
