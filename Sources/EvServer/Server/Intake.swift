internal import CLibEv

/// The loop side of the engine, shared by both transports: the watcher on the server's socket, the serving
/// session (`serveForever` / `handleRequest`, with its timeout and `serviceActions` timers) and why taking
/// work is paused. The transport does the taking (`ServerTransport.takeWork`) when the watcher fires.
///
/// The watcher runs exactly while a session serves, no `PauseReasons` holds, and a `handleRequest()`
/// session is not waiting for the connection it took to close.
///
/// Confined to the server's loop thread.
final class Intake {
    let loop: EventLoop
    /// The transport this intake feeds; it owns the intake (unowned: it outlives it).
    unowned(unsafe) var transport: (any ServerTransport)! {
        didSet {
            transportType = type(of: transport)
            transportObject = Unmanaged.passUnretained(transport as AnyObject).toOpaque()
        }
    }
    /// `transport`'s type and object, unretained, for the watcher's callback: calling through them costs no
    /// retain/release per wake-up (the existential, loaded from `unowned(unsafe)`, is copied +1 for a call).
    fileprivate private(set) var transportType: (any ServerTransport.Type)?
    fileprivate private(set) var transportObject: UnsafeMutableRawPointer?
    private(set) var pauses: PauseReasons = []
    private let lifecycle: ServerLifecycle
    private let hooks: ServerHooks
    private let metrics: ServerMetrics
    private var watcher: IOWatcher!
    private var session: ServingSession!
    private var shortageTimer: TimerWatcher!

    init(context: ServerContext) {
        loop = context.loop
        lifecycle = context.lifecycle
        hooks = context.hooks
        metrics = context.metrics
        watcher = IOWatcher(
            loop: loop, descriptor: context.socket.descriptor, events: .read, owner: self, callback: intakeReadable
        )
        shortageTimer = TimerWatcher(loop: loop, after: 1) { [unowned self] in resume(.resourceShortage) }
        session = ServingSession(
            loop: loop, serviceActionsInterval: context.configuration.serviceActionsInterval,
            onTimeout: { [unowned self] in
                hooks.handleTimeout()
                stopServing(session: nil, timedOut: true)
            },
            serviceActions: { [hooks] in hooks.serviceActions?() }
        )
    }

    /// Whether the transport should take work now: the watcher runs. Mirrored by `updateWatcher` in stored
    /// Bools, with whether the session takes one request: read per request, a stored Bool costs no retain of
    /// the watcher or the session (a class reached through a `var`).
    private(set) var isTaking = false
    private var takesOneRequest = false

    // MARK: Sessions

    /// Starts the session `number`: `oneRequest` for `handleRequest()`, which waits at most `timeout`.
    func startServing(session number: Int, oneRequest: Bool, timeout: Double?) {
        let started = !pauses.contains(.stopped)
            && session.begin(
                number: number, oneRequest: oneRequest, timeout: timeout,
                hasServiceActions: hooks.serviceActions != nil
            )
        guard started else {
            lifecycle.sessionEnded(timedOut: false)
            return
        }
        updateWatcher()
    }

    /// Ends the session `number` (or whichever runs, when `nil`).
    func stopServing(session number: Int?) {
        stopServing(session: number, timedOut: false)
    }

    private func stopServing(session number: Int?, timedOut: Bool) {
        guard session.end(number: number) else { return }
        updateWatcher()
        lifecycle.sessionEnded(timedOut: timedOut)
    }

    /// The transport took one client (a connection, a datagram, or one it refused). In a `handleRequest()`
    /// session that ends the session, or, with `heldBy`, pauses it until that connection closes.
    func requestTaken(heldBy connectionID: UInt64? = nil) {
        guard takesOneRequest else { return }
        if let connectionID {
            session.current?.connectionID = connectionID
            updateWatcher()
        } else {
            stopServing(session: nil)
        }
    }

    /// A connection closed: ends the `handleRequest()` session that waited for it.
    func connectionClosed(_ id: UInt64) {
        if let current = session.current, current.oneRequest, current.connectionID == id {
            stopServing(session: current.number)
        }
    }

    // MARK: Pausing

    func pause(_ reasons: PauseReasons) {
        let added = reasons.subtracting(pauses)
        if !added.isEmpty { metrics.countPauses(added) }
        pauses.formUnion(reasons)
        updateWatcher()
    }

    func resume(_ reasons: PauseReasons) {
        pauses.subtract(reasons)
        updateWatcher()
    }

    /// Out of descriptors, memory or threads: takes no work for a second, then tries again.
    func pauseForShortage() {
        pause(.resourceShortage)
        shortageTimer.start()
    }

    private func updateWatcher() {
        if session.isServing && pauses.isEmpty && session.current?.connectionID == nil {
            watcher.start()
        } else {
            watcher.stop()
        }
        isTaking = watcher.isActive
        takesOneRequest = session.isOneRequest
    }

    // MARK: Closing

    /// Stops taking work for good (a graceful shutdown's first step, or close): ends the session.
    func stop() {
        pauses.insert(.stopped)
        stopServing(session: nil)
        updateWatcher()
    }

    /// Stops every watcher and timer. The loop may then be destroyed.
    func close() {
        stop()
        shortageTimer.stop()
        session.stopTimers()
    }
}

/// The C callback of the intake's watcher (`data` holds the intake, unretained): the server's socket has work.
/// No reference is taken to the intake or the transport: the transport owns the intake, and the engine's `let`
/// holds the transport until the server's close has stopped the loop (a server released on the loop thread is
/// closed by a helper thread that holds the engine). (A closure with `[unowned self]` cost two retain/release
/// pairs a wake-up.)
private func intakeReadable(_ loop: OpaquePointer?, _ watcher: UnsafeMutablePointer<ev_io>?, _ revents: CInt) {
    guard let context = watcher?.pointee.data else { return }
    let intake = Unmanaged<Intake>.fromOpaque(context)
    guard let object = intake._withUnsafeGuaranteedRef({ $0.transportObject }),
        let type = intake._withUnsafeGuaranteedRef({ $0.transportType })
    else { return }
    type.takeWork(unretained: object)
}
