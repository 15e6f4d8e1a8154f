internal import CLibEv

/// The readiness bits libev reports to a watcher. The only place libev's `Int` constants become `CInt`.
struct IOEvents: OptionSet, Sendable {
    let rawValue: CInt

    static let read = IOEvents(rawValue: CInt(EV_READ))
    static let write = IOEvents(rawValue: CInt(EV_WRITE))
    static let timer = IOEvents(rawValue: CInt(EV_TIMER))
    /// libev stopped the watcher because of an error (for example an invalid descriptor): an application bug.
    static let error = IOEvents(rawValue: CInt(truncatingIfNeeded: EV_ERROR))
}
