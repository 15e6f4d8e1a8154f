import ArgumentParser
import EvservedKit

#if canImport(Glibc)
import Glibc
#endif

/// `--user` / `--group`: the identity the daemon serves as, taken once every socket is bound.
struct PrivilegeOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Once bound, serve as this user, its primary group (or --group) and no supplementary groups.",
            discussion: """
                Ports below 1024 are bound as root first. The daemon still removes its Unix socket files and \
                pid file at exit as this user: their directories must be writable by it (checked at the start; \
                the socket files are given to it), for example a RuntimeDirectory= of a systemd unit. With \
                --workers the supervisor changes identity too, before it starts the workers.
                """,
            valueName: "name"
        )
    )
    var user: String?

    @Option(
        help: ArgumentHelp(
            "Once bound, serve as this group (with --user: instead of the user's primary group); alone, only the "
                + "group changes.",
            valueName: "name"
        )
    )
    var group: String?

    /// Unknown names, and a change only root may make when not root, are refused before anything is bound.
    func validate() throws {
        _ = try PrivilegeDrop(user: user, group: group)
    }

    /// Before binding: refuses (exit 1, one line) when the user could not remove `files` (the Unix socket
    /// files and the pid file) at exit.
    func checkRemovable(_ files: [String]) throws {
        guard let drop = try PrivilegeDrop(user: user, group: group), let name = drop.user?.name else { return }
        for file in files {
            let directory = file.contains("/") ? String(file[..<file.lastIndex(of: "/")!]) : "."
            guard drop.mayWrite(inDirectory: directory.isEmpty ? "/" : directory) else {
                Evserved.printError(
                    """
                    evserved: error: --user \(name) could not remove \(file) at exit: the directory \(directory) is \
                    not writable by \(name); use a directory it may write to (systemd: RuntimeDirectory=)
                    """
                )
                throw ExitCode.failure
            }
        }
    }

    /// After binding: gives the Unix socket files `socketFiles` to the user (so it can remove them at exit,
    /// even in a sticky directory such as /tmp), then takes the identity. Nothing without the flags.
    func dropAfterBinding(socketFiles: [String]) throws {
        guard let drop = try PrivilegeDrop(user: user, group: group) else { return }
        if let uid = drop.user?.uid, !drop.isDone {
            for file in socketFiles where chown(file, uid, drop.group.gid) != 0 {
                throw PrivilegeError("chown of \(file) to \(drop.user?.name ?? "")")
            }
        }
        try drop.apply()
    }
}
