import ArgumentParser
import EvservedKit

#if canImport(Glibc)
import Glibc
#endif

extension Evserved {
    /// Parses the command line with one rule for bad input: a value the daemon refuses (`FlagValueError`,
    /// from a flag's transform or `validate`) exits with status 1 and one line naming the flag; a command
    /// line that cannot be read (an unknown flag, a flag without its value, a stray argument) exits with
    /// status 64 (EX_USAGE) and one line. `--help` and `--version` print as usual.
    static func main() {
        var command: any ParsableCommand  // Evserved, or the parser's own help command
        do {
            command = try parseAsRoot()
        } catch {
            if let refused = findFlagValueError(in: error) {
                printError("evserved: error: \(refused)")
                Glibc.exit(1)
            }
            if exitCode(for: error) == .success { Self.exit(withError: error) }  // --help, --version
            let message = Self.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            printError("evserved: error: \(message) (see evserved --help)")
            Glibc.exit(64)
        }
        do {
            try command.run()
        } catch {
            Self.exit(withError: error)
        }
        Glibc.exit(0)
    }

    /// The `FlagValueError` inside an error of the argument parser (which wraps the errors of transforms
    /// and `validate` in types of its own).
    private static func findFlagValueError(in value: Any, depth: Int = 0) -> FlagValueError? {
        if let found = value as? FlagValueError { return found }
        guard depth < 8 else { return nil }
        for child in Mirror(reflecting: value).children {
            if let found = findFlagValueError(in: child.value, depth: depth + 1) { return found }
        }
        return nil
    }

    /// Writes one line to standard error, unbuffered.
    static func printError(_ message: String) {
        let line = Array((message + "\n").utf8)
        _ = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }
}
