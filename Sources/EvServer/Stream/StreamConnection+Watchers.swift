internal import CLibEv

// The C callbacks of a `StreamConnection`'s read and write watchers: the watcher's `data` holds the
// connection, unretained (it owns its watchers and stops them before it goes). One strong reference is taken
// for the call, because the handler may close the connection and its table drop it while the call runs;
// that retain and release are all the reference counting an event costs (a closure with `[unowned self]`
// cost three pairs).

/// The read watcher of a `StreamConnection` fired.
func streamConnectionReadable(_ loop: OpaquePointer?, _ watcher: UnsafeMutablePointer<ev_io>?, _ revents: CInt) {
    guard let context = watcher?.pointee.data else { return }
    let connection = Unmanaged<StreamConnection>.fromOpaque(context).takeUnretainedValue()
    withExtendedLifetime(connection) { connection.readable() }
}

/// The write watcher of a `StreamConnection` fired.
func streamConnectionWritable(_ loop: OpaquePointer?, _ watcher: UnsafeMutablePointer<ev_io>?, _ revents: CInt) {
    guard let context = watcher?.pointee.data else { return }
    let connection = Unmanaged<StreamConnection>.fromOpaque(context).takeUnretainedValue()
    withExtendedLifetime(connection) { connection.writable() }
}
