internal import CLibEv

// The C callbacks of a `StreamConnection`'s read and write watchers: the watcher's `data` holds the
// connection, unretained (it owns its watchers and stops them before it goes).
//
// The call takes no reference either (a retain and release per event were 6 % of a round trip): the
// connection is alive when the event fires, since its table holds it until `finish()`, and `finish()`, the
// one way out of the table, takes a reference while a trampoline runs (`inWatcherCall`), which the
// trampoline drops after the call. So a handler that closes the connection during the call cannot free it
// under the trampoline's feet.

/// The read watcher of a `StreamConnection` fired.
func streamConnectionReadable(_ loop: OpaquePointer?, _ watcher: UnsafeMutablePointer<ev_io>?, _ revents: CInt) {
    guard let context = watcher?.pointee.data else { return }
    StreamConnection.watcherCall(context) { $0.readable() }
}

/// The write watcher of a `StreamConnection` fired.
func streamConnectionWritable(_ loop: OpaquePointer?, _ watcher: UnsafeMutablePointer<ev_io>?, _ revents: CInt) {
    guard let context = watcher?.pointee.data else { return }
    StreamConnection.watcherCall(context) { $0.writable() }
}

extension StreamConnection {
    /// Runs `event` on the connection at `context` without retaining it, then drops the reference `finish()`
    /// took if it ran meanwhile.
    @inline(__always)
    static func watcherCall(_ context: UnsafeMutableRawPointer, _ event: (StreamConnection) -> Void) {
        let connection = Unmanaged<StreamConnection>.fromOpaque(context)
        let kept = connection._withUnsafeGuaranteedRef { connection in
            connection.inWatcherCall = true
            event(connection)
            connection.inWatcherCall = false
            defer { connection.keptForWatcherCall = false }
            return connection.keptForWatcherCall
        }
        if kept { connection.release() }
    }

    /// Called by `finish()`: inside a watcher call, keeps the connection alive until the call ends.
    func keepForWatcherCall() {
        guard inWatcherCall, !keptForWatcherCall else { return }
        keptForWatcherCall = true
        _ = Unmanaged.passUnretained(self).retain()
    }
}
