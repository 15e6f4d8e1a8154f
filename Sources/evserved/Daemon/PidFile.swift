#if canImport(Glibc)
import Glibc
#endif

/// `--pid-file PATH`: claimed before anything binds (a live daemon's file refuses the start), written
/// atomically once every listener serves (by a reload's new process too), removed at exit while it still
/// names this process.
struct PidFile {
    let path: String

    /// Refuses to start when the file names a live process other than `predecessor` (the process a reload
    /// replaces); a stale file (its process gone) is taken over.
    func claim(replacing predecessor: pid_t? = nil) throws(PidFileError) {
        guard let pid = recordedPid(), pid != predecessor else { return }
        guard pid != getpid(), kill(pid, 0) == 0 || errno == EPERM else { return }
        throw PidFileError(
            "evserved is already running with pid \(pid) (pid file \(path)): stop it, or give another --pid-file"
        )
    }

    /// Writes this process's pid: to a temporary file beside it, then renamed over it.
    func write() throws(PidFileError) {
        let temporary = "\(path).\(getpid()).tmp"
        let text = "\(getpid())\n"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw PidFileError("cannot write the pid file \(path): \(String(cString: strerror(errno)))")
        }
        let written = text.withCString { Glibc.write(descriptor, $0, strlen($0)) }
        close(descriptor)
        guard written == text.utf8.count, rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw PidFileError("cannot write the pid file \(path): \(reason)")
        }
    }

    /// Removes the file if it still names this process.
    func remove() {
        guard recordedPid() == getpid() else { return }
        unlink(path)
    }

    /// The pid the file holds, if it exists and holds one.
    private func recordedPid() -> pid_t? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes = [UInt8](repeating: 0, count: 32)
        let count = read(descriptor, &bytes, bytes.count)
        guard count > 0 else { return nil }
        return pid_t(String(decoding: bytes[..<count], as: UTF8.self).split(separator: "\n").first ?? "")
    }
}

/// Why the pid file stops the start, in one line.
struct PidFileError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
