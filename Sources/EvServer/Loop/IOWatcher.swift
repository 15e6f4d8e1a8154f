internal import CLibEv

/// An `ev_io` watcher on one descriptor, owned by this object and confined to its loop's thread.
///
/// The C struct lives in heap memory that never moves; `data` holds this object unretained. The owner of
/// an `IOWatcher` (a connection, a listener) must `stop()` it before dropping it: `deinit` traps on an
/// active watcher, because libev would go on using freed memory.
final class IOWatcher {
    private let loop: EventLoop
    private let memory: WatcherMemory<ev_io>
    private var raw: UnsafeMutablePointer<ev_io> { memory.raw }
    /// Called on the loop thread with the events that fired.
    var onEvent: (IOEvents) -> Void

    init(loop: EventLoop, descriptor: CInt, events: IOEvents, onEvent: @escaping (IOEvents) -> Void) {
        self.loop = loop
        self.onEvent = onEvent
        memory = WatcherMemory(ev_io()) { CLibEv_ev_io_init($0, ioCallback, descriptor, events.rawValue) }
        memory.attach(owner: self)
    }

    /// A watcher whose events go straight to `owner` through `callback`, a trampoline written for the
    /// owner's type that finds it (unretained) in the watcher's `data`: for the per-event hot path, where
    /// the closure of the other initialiser would cost a retain and release of its context, and its
    /// `[unowned self]` another, on every event. `owner` must outlive the watcher (it owns it), and the
    /// trampoline must hold a strong reference to it for the duration of the call.
    init(loop: EventLoop, descriptor: CInt, events: IOEvents, owner: AnyObject, callback: CLibEv_io_cb) {
        self.loop = loop
        onEvent = { _ in }
        memory = WatcherMemory(ev_io()) { CLibEv_ev_io_init($0, callback, descriptor, events.rawValue) }
        memory.attach(owner: owner)
    }

    deinit { memory.free(kind: "IOWatcher") }

    var isActive: Bool { memory.isActive }

    func start() {
        loop.preconditionInLoop()
        ev_io_start(loop.raw, raw)
    }

    /// Stops the watcher and clears any pending event. Idempotent.
    func stop() {
        loop.preconditionInLoop()
        ev_io_stop(loop.raw, raw)
    }

    fileprivate func fire(_ events: IOEvents) { onEvent(events) }
}

private func ioCallback(_ loop: OpaquePointer?, _ watcher: UnsafeMutablePointer<ev_io>?, _ revents: CInt) {
    guard let context = watcher?.pointee.data else { return }
    // The local strong reference keeps the watcher alive for the call even if the callback drops it.
    let owner = Unmanaged<IOWatcher>.fromOpaque(context).takeUnretainedValue()
    owner.fire(IOEvents(rawValue: revents))
}
