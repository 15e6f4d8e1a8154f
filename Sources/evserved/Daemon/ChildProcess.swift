import EvServer

#if canImport(Glibc)
import Glibc
#endif

/// Starting another process of evserved: a worker of `--workers`, or the successor of a reload. It gets
/// listening sockets at descriptors 3, 4, ... (in `--listen` order), starts with no signal blocked, and sees
/// this process's environment plus what the caller adds.
enum ChildProcess {
    /// A child gets its sockets from this descriptor number on.
    static let firstHandedDown: CInt = 3

    /// The executable file of this process, read at start: a reload starts the file at this path, which is
    /// the new binary when it was replaced on disk since.
    static func currentExecutable() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return "/proc/self/exe" }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A pipe whose ends no child inherits unless handed to it: `(read, write)`, or `nil` with `errno` set.
    static func pipeClosedOnExec() -> (read: CInt, write: CInt)? {
        var ends: [CInt] = [0, 0]
        guard pipe(&ends) == 0 else { return nil }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        return (ends[0], ends[1])
    }

    /// `arguments` less the options named in `options` and their values (`--listen X`, `--listen=X`); what
    /// follows `--` (a program's own arguments) is kept whole.
    static func arguments(_ arguments: [String], without options: [String]) -> [String] {
        var kept: [String] = []
        var skipNext = false
        for (index, argument) in arguments.enumerated() {
            if argument == "--" { return kept + arguments[index...] }
            if skipNext { skipNext = false; continue }
            if options.contains(argument) { skipNext = true; continue }
            if options.contains(where: { argument.hasPrefix($0 + "=") }) { continue }
            kept.append(argument)
        }
        return kept
    }

    /// `3,4,...`: the numbers `count` handed-down sockets have in the child.
    static func handedDownList(count: Int) -> String {
        (0..<count).map { String(firstHandedDown + CInt($0)) }.joined(separator: ",")
    }

    /// `posix_spawn` of `executable` with `descriptors` at 3, 4, ..., `standardOutput` (if given) as its
    /// standard output, no signal blocked, and `environment` added to ours (`ProcessSpawn`, the one way
    /// evserved starts processes). `nil` with `errno` set when it could not start.
    static func spawn(
        executable: String, arguments: [String], handing descriptors: [CInt], standardOutput: CInt? = nil,
        environment added: [String: String]
    ) -> pid_t? {
        var moves = standardOutput.map { [(from: $0, to: STDOUT_FILENO)] } ?? []
        for (index, descriptor) in descriptors.enumerated() {
            moves.append((descriptor, firstHandedDown + CInt(index)))
        }
        let environment = ProcessSpawn.environment(adding: added)
        // A failure leaves posix_spawn's error in errno.
        return try? ProcessSpawn.spawn(executable, arguments: arguments, environment: environment, descriptors: moves)
    }
}
