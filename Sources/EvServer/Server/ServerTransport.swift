/// The loop side of a transport (stream or datagram), as the engine's `Intake` drives it: what differs
/// between accepting connections and receiving datagrams. Every method runs on the loop thread.
protocol ServerTransport: AnyObject, SendableMetatype {
    /// The public server the transport serves for (handlers see it).
    associatedtype Server: AnyObject & Sendable
    /// Links the transport to its server: the first work the loop runs. Unretained, and to be stored so
    /// (never retained, even for the call): a retain here could make the loop thread drop the server's last
    /// reference and run its deinit, so that its close (which cannot wait for its own thread) would finish
    /// after `deinit` returned, on a helper thread.
    func attach(to server: Unmanaged<Server>)
    /// The intake that watches the server's socket for this transport.
    var intake: Intake { get }
    /// The server's socket is readable: take a bounded batch of work (accept connections or receive
    /// datagrams), checking `intake.isTaking` before each.
    func takeWork()
    /// A graceful shutdown's first step, after the intake stopped for good: take what already waits (a
    /// stream's completed connections, whose clients may have sent requests).
    func takeWaitingWork()
    /// Closes every open connection now (async mode's close, while the loop still runs for their tasks).
    func closeConnections()
    /// The server is closing: stops every watcher of the transport and closes what it owns on the loop.
    func close()
}

extension ServerTransport {
    /// `takeWork()` on the transport at `object` (an unretained `Self`), called through its type: the intake's
    /// watcher reaches the transport this way without a retain/release per wake-up.
    static func takeWork(unretained object: UnsafeMutableRawPointer) {
        Unmanaged<Self>.fromOpaque(object)._withUnsafeGuaranteedRef { $0.takeWork() }
    }
}
