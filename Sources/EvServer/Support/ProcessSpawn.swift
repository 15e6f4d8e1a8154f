internal import CLibEv

#if canImport(Glibc)
import Glibc
#endif

/// Starting a program in a child process, the one way evserved does it (its `--workers` and its `--exec`
/// children): `posix_spawn` (no fork of the threaded daemon), the child with no signal blocked and every
/// signal at its default disposition (the daemon blocks its stop signals in every thread and ignores
/// SIGPIPE; a child must not inherit either), the descriptors asked for in place and, when asked, every
/// other one closed.
package enum ProcessSpawn {
    /// Starts `path` with `arguments` (the first is the program's name, `argv[0]`) and exactly `environment`
    /// (`NAME=value` entries).
    ///
    /// - Parameters:
    ///   - descriptors: `(from, to)` pairs: the child's descriptor `to` is a copy of the caller's `from`.
    ///   - closingFrom: in the child, every descriptor from this one up is closed after the copies (so a
    ///     descriptor the daemon forgot to mark close-on-exec does not leak); `nil`: only close-on-exec ones.
    /// - Returns: the child's pid. - Throws: the `SystemError` of `posix_spawn` (its code also in `errno`).
    package static func spawn(
        _ path: String, arguments: [String], environment: [String], descriptors: [(from: Int32, to: Int32)],
        closingFrom: Int32? = nil
    ) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (from, to) in descriptors { posix_spawn_file_actions_adddup2(&actions, from, to) }
        if let closingFrom { CLibEv_posix_spawn_file_actions_addclosefrom_np(&actions, closingFrom) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var everySignal = sigset_t()
        sigemptyset(&everySignal)
        for signal in 1..<CInt(65) where signal != SIGKILL && signal != SIGSTOP { sigaddset(&everySignal, signal) }
        posix_spawnattr_setsigdefault(&attributes, &everySignal)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer { for pointer in envp { free(pointer) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        guard result == 0 else {
            errno = result  // for callers that report errno
            throw SystemError(operation: "posix_spawn(\(path))", errno: result)
        }
        return pid
    }

    /// This process's environment, as `NAME=value` entries, without the names in `removing` and with
    /// `adding` (which replaces entries of the same name).
    package static func environment(removing: Set<String> = [], adding: [String: String] = [:]) -> [String] {
        var entries: [String] = []
        var entry = environ
        while let variable = entry.pointee {
            let text = String(cString: variable)
            let name = String(text.prefix { $0 != "=" })
            if adding[name] == nil, !removing.contains(name) { entries.append(text) }
            entry += 1
        }
        return entries + adding.map { "\($0.key)=\($0.value)" }.sorted()
    }

    /// A descriptor (close-on-exec) that becomes readable when the child `pid` exits, so a thread can wait
    /// for children with `poll` beside other descriptors, and reap exactly its own ones (`waitpid(pid)`),
    /// never another part of the process's. - Throws: the `SystemError` of `pidfd_open` (Linux 5.3 or later).
    package static func exitDescriptor(of pid: Int32) throws -> Int32 {
        let descriptor = CLibEv_pidfd_open(pid)
        guard descriptor >= 0 else { throw SystemError(operation: "pidfd_open(\(pid))", errno: errno) }
        return descriptor
    }
}
