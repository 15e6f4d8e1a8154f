internal import CLibEv

/// An `ev_timer`, owned by this object and confined to its loop's thread.
///
/// For idle timeouts use `restart()` on activity (libev's `ev_timer_again`, the cheap way the manual
/// recommends). As with `IOWatcher`, the owner must `stop()` it before dropping it.
package final class TimerWatcher {
    private let loop: EventLoop
    private let memory: WatcherMemory<ev_timer>
    private var raw: UnsafeMutablePointer<ev_timer> { memory.raw }
    /// Called on the loop thread when the timer fires.
    var onFire: () -> Void
    private var after: Double
    private var repeatInterval: Double

    /// - Parameters:
    ///   - after: seconds until the first firing.
    ///   - repeat: seconds between later firings; 0 for a one-shot timer.
    package init(loop: EventLoop, after: Double, repeat: Double = 0, onFire: @escaping () -> Void) {
        self.loop = loop
        self.onFire = onFire
        self.after = after
        repeatInterval = `repeat`
        memory = WatcherMemory(ev_timer()) { CLibEv_ev_timer_init($0, timerCallback, after, `repeat`) }
        memory.attach(owner: self)
    }

    deinit { memory.free(kind: "TimerWatcher") }

    package var isActive: Bool { memory.isActive }

    /// Starts the timer to fire `after` seconds from now (the last `set`, or the initialiser's), then every
    /// `repeat`. Re-sets the delay each time: libev leaves a one-shot timer that has fired (or was stopped)
    /// with the time that was *left*, so a bare `ev_timer_start` would fire it at once. No-op when active.
    package func start() {
        loop.preconditionInLoop()
        guard !isActive else { return }
        CLibEv_ev_timer_set(raw, after, repeatInterval)
        ev_timer_start(loop.raw, raw)
    }

    /// Stops the timer and clears a pending firing. Idempotent.
    package func stop() {
        loop.preconditionInLoop()
        ev_timer_stop(loop.raw, raw)
    }

    /// Re-arms a repeating timer to fire `repeat` seconds from now (`ev_timer_again`).
    func restart() {
        loop.preconditionInLoop()
        ev_timer_again(loop.raw, raw)
    }

    /// Sets a new delay and interval; takes effect at the next `start()` or `restart()`.
    package func set(after: Double, repeat: Double = 0) {
        loop.preconditionInLoop()
        precondition(!isActive, "TimerWatcher.set on an active timer: stop() it first")
        self.after = after
        repeatInterval = `repeat`
        CLibEv_ev_timer_set(raw, after, `repeat`)
    }

    fileprivate func fire() { onFire() }
}

private func timerCallback(_ loop: OpaquePointer?, _ watcher: UnsafeMutablePointer<ev_timer>?, _ revents: CInt) {
    guard let context = watcher?.pointee.data else { return }
    let owner = Unmanaged<TimerWatcher>.fromOpaque(context).takeUnretainedValue()
    owner.fire()
}
