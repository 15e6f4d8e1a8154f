#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: which one, and `errno` (captured at once, before anything can overwrite it).
package struct SystemError: Error, CustomStringConvertible {
    let operation: String
    let errno: CInt

    var reason: String { String(cString: strerror(errno)) }
    package var description: String { "\(operation) failed: \(reason) (errno \(errno))" }
}
