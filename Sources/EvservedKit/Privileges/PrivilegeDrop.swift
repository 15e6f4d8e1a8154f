#if canImport(Glibc)
import Glibc
#endif

/// `--user NAME` / `--group NAME`: the identity the daemon takes once its sockets are bound (so ports below
/// 1024 work): the user's uid, its primary group (or the group given) and no supplementary groups.
///
/// `--group` alone changes only the group (and clears the supplementary groups). Only root can change to
/// another user or group; asking for the identity the process already has is allowed and does nothing.
public struct PrivilegeDrop: Sendable {
    /// The user's name and uid, if `--user` was given.
    public let user: (name: String, uid: uid_t)?
    /// The group to take: `--group`, else the user's primary group.
    public let group: (name: String, gid: gid_t)

    /// Looks the names up (`getpwnam`, `getgrnam`) and checks that this process may take them; `nil` when
    /// neither is given. The error names the flag and says what to do.
    public init?(user userName: String?, group groupName: String?) throws(FlagValueError) {
        guard userName != nil || groupName != nil else { return nil }
        var primary: gid_t?
        if let userName {
            guard let entry = getpwnam(userName) else {
                throw FlagValueError("--user", userName, "no such user: give the name of an existing user")
            }
            user = (userName, entry.pointee.pw_uid)
            primary = entry.pointee.pw_gid
        } else {
            user = nil
        }
        if let groupName {
            guard let entry = getgrnam(groupName) else {
                throw FlagValueError("--group", groupName, "no such group: give the name of an existing group")
            }
            group = (groupName, entry.pointee.gr_gid)
        } else {
            let gid = primary!  // a user was given
            group = (getgrgid(gid).map { String(cString: $0.pointee.gr_name) } ?? "\(gid)", gid)
        }
        try checkAllowed()
    }

    /// Whether the process already is that user and group, with no supplementary groups (those only root
    /// can drop: a user that asks for its own identity keeps its own).
    public var isDone: Bool {
        let uid = user?.uid ?? getuid()
        return getuid() == uid && geteuid() == uid && getgid() == group.gid && getegid() == group.gid
            && (getgroups(0, nil) == 0 || geteuid() != 0)
    }

    private func checkAllowed() throws(FlagValueError) {
        guard geteuid() != 0, !isDone else { return }
        if let user, user.uid != geteuid() {
            throw FlagValueError(
                "--user", user.name,
                "only root can change user, and evserved runs as uid \(geteuid()): start it as root or leave out --user"
            )
        }
        throw FlagValueError(
            user == nil ? "--group" : "--user", user?.name ?? group.name,
            "only root can change group, and evserved runs as gid \(getegid()): start it as root or leave out the flag"
        )
    }

    /// Takes the identity: `setgroups(0)`, then `setgid`, then `setuid`,
    /// each checked, then checks that root cannot be regained. Does nothing when `isDone`.
    public func apply() throws(PrivilegeError) {
        guard !isDone else { return }
        guard setgroups(0, nil) == 0 else { throw PrivilegeError("setgroups(0) (dropping supplementary groups)") }
        // As root, setgid and setuid set the real, effective and saved ids.
        guard setgid(group.gid) == 0 else {
            throw PrivilegeError("setgid(\(group.gid)) (to group \(group.name))")
        }
        if let user {
            guard setuid(user.uid) == 0 else {
                throw PrivilegeError("setuid(\(user.uid)) (to user \(user.name))")
            }
            if user.uid != 0 && (setuid(0) == 0 || seteuid(0) == 0) {
                throw PrivilegeError("the check that root cannot be regained: setuid(0) succeeded", errno: 0)
            }
        }
        guard isDone else { throw PrivilegeError("the check of the new identity: the ids did not change", errno: 0) }
    }

    /// Whether the user may create and remove files in `directory` after the drop (by its mode bits, ACLs
    /// aside): where the daemon removes its Unix socket files and pid file at exit. Always true without
    /// `--user` (the process stays root).
    public func mayWrite(inDirectory directory: String) -> Bool {
        guard let user, user.uid != 0 else { return true }
        var info = stat()
        guard stat(directory, &info) == 0 else { return false }
        let bits: mode_t
        if info.st_uid == user.uid {
            bits = S_IWUSR | S_IXUSR
        } else if info.st_gid == group.gid {
            bits = S_IWGRP | S_IXGRP
        } else {
            bits = S_IWOTH | S_IXOTH
        }
        return info.st_mode & bits == bits
    }
}

/// A step of the privilege drop failed: the daemon cannot go on as the wrong user.
public struct PrivilegeError: Error, CustomStringConvertible {
    public let description: String

    public init(_ step: String, errno code: CInt = errno) {
        let reason = code == 0 ? "" : ": \(String(cString: strerror(code)))"
        description = "cannot drop privileges: \(step) failed\(reason)"
    }
}
