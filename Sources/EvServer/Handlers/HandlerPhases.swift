/// Runs a blocking handler's phases as socketserver does: `setup`; if it succeeds, `handle` and then
/// `finish` (also when `handle` threw).
/// - Returns: the first error thrown, to be reported once.
func runHandlerPhases(
    setup: () throws -> Void,
    handle: () throws -> Void,
    finish: () throws -> Void
) -> (any Error)? {
    do {
        try setup()
    } catch {
        return error
    }
    var failure: (any Error)?
    do {
        try handle()
    } catch {
        failure = error
    }
    do {
        try finish()
    } catch {
        failure = failure ?? error
    }
    return failure
}
