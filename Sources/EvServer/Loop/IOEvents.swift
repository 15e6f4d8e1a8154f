internal import CLibEv

/// The readiness bits libev reports to a watcher. The only place libev's `Int` constants become `CInt`.
struct IOEvents: OptionSet, Sendable {
    let rawValue: CInt

    static let read = IOEvents(rawValue: CInt(EV_READ))
    static let write = IOEvents(rawValue: CInt(EV_WRITE))
}
