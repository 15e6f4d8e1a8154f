"""--user / --group: evserved binds as root (a port below 1024 works), then serves as the user, its group and
no supplementary groups, read from /proc/PID/status; unknown names and changes a non-root process cannot
make are refused before anything is bound; the Unix socket files are still removed at exit."""
import os
import shutil
import socket
import subprocess
import tempfile

import pytest

from conftest import BINARY, TIMEOUT, recv_until, run_evserved

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="changing user needs root")

NOBODY, NOGROUP = 65534, 65534


def identity(pid):
    """(uids, gids, supplementary groups) of a process: the Uid/Gid lines list real, effective, saved, fs."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = value.split()
    return [int(v) for v in fields["Uid"]], [int(v) for v in fields["Gid"]], [int(v) for v in fields["Groups"]]


def low_free_port():
    """A free TCP port below 1024 (7xx), which only root may bind."""
    for port in range(700, 800):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    pytest.skip("no free port in 700-799")


def test_user_after_binding_a_low_port(daemon_factory):
    port = low_free_port()
    # Started with supplementary groups (daemon, bin), which the drop must clear.
    daemon = daemon_factory("--listen", f"tcp://127.0.0.1:{port}?service=upper", "--user", "nobody",
                            extra_groups=[1, 2])
    assert daemon.urls == [f"tcp://127.0.0.1:{port}"]
    uids, gids, groups = identity(daemon.process.pid)
    assert uids == [NOBODY] * 4 and gids == [NOGROUP] * 4 and groups == []
    with daemon.connect() as client:
        client.sendall(b"low port\n")
        assert recv_until(client, lambda data: b"\n" in data) == b"LOW PORT\n"
    assert daemon.stop() == 0


def test_group_alone_changes_only_the_group(daemon_factory):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--group", "nogroup", extra_groups=[1, 2])
    uids, gids, groups = identity(daemon.process.pid)
    assert uids == [0] * 4 and gids == [NOGROUP] * 4 and groups == []
    assert daemon.stop() == 0


def test_unix_socket_file_removed_at_exit_as_the_user(daemon_factory):
    directory = tempfile.mkdtemp(prefix="evs-", dir="/tmp")
    os.chown(directory, NOBODY, NOGROUP)
    path = os.path.join(directory, "upper.sock")
    pid_file = os.path.join(directory, "evserved.pid")
    daemon = daemon_factory("--listen", f"unix://{path}", "--user", "nobody", "--pid-file", pid_file)
    assert os.stat(path).st_uid == NOBODY  # given to the user, so that it may remove it
    assert identity(daemon.process.pid)[0] == [NOBODY] * 4
    assert daemon.stop() == 0
    assert not os.path.exists(path) and not os.path.exists(pid_file), os.listdir(directory)
    shutil.rmtree(directory)


def test_unix_socket_in_a_directory_the_user_cannot_write_is_refused():
    directory = tempfile.mkdtemp(prefix="evs-", dir="/tmp")  # 0700, root's
    path = os.path.join(directory, "upper.sock")
    status, stderr = run_evserved("--listen", f"unix://{path}", "--user", "nobody")
    assert status == 1, stderr
    assert f"--user nobody could not remove {path} at exit: the directory {directory} is not writable" in stderr
    assert stderr.count("\n") == 1
    assert not os.path.exists(path)  # refused before binding
    shutil.rmtree(directory)


@pytest.mark.parametrize("flag, name, problem", [
    ("--user", "no-such-user-evs", "no such user"),
    ("--group", "no-such-group-evs", "no such group"),
])
def test_unknown_names_are_refused(flag, name, problem):
    status, stderr = run_evserved("--listen", "tcp://127.0.0.1:0", flag, name)
    assert status == 1
    assert stderr == f"evserved: error: invalid {flag} '{name}': {problem}: give the name of an existing " \
                     f"{flag[2:]}\n"


def test_a_non_root_process_cannot_switch_to_another_user():
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv missing (util-linux): run make deps"
    as_nobody = [setpriv, f"--reuid={NOBODY}", f"--regid={NOGROUP}", "--clear-groups"]
    result = subprocess.run([*as_nobody, BINARY, "--listen", "tcp://127.0.0.1:0", "--user", "root"],
                            capture_output=True, timeout=TIMEOUT)
    assert result.returncode == 1
    assert f"only root can change user, and evserved runs as uid {NOBODY}" in result.stderr.decode()
    # Its own identity is fine (nothing to change).
    result = subprocess.run([*as_nobody, BINARY, "--listen", "tcp://127.0.0.1:0", "--user", "nobody", "--help"],
                            capture_output=True, timeout=TIMEOUT)
    assert result.returncode == 0


def test_workers_and_their_supervisor_change_user(daemon_factory):
    port = low_free_port()
    daemon = daemon_factory("--listen", f"tcp://127.0.0.1:{port}", "--workers", "2", "--user", "nobody",
                            extra_groups=[1, 2])
    with open(f"/proc/{daemon.process.pid}/task/{daemon.process.pid}/children") as listing:
        workers = [int(pid) for pid in listing.read().split()]
    assert len(workers) == 2
    for pid in [daemon.process.pid, *workers]:
        uids, gids, groups = identity(pid)
        assert uids == [NOBODY] * 4 and gids == [NOGROUP] * 4 and groups == [], pid
    with daemon.connect() as client:
        client.sendall(b"echo")
        assert recv_until(client, lambda data: len(data) >= 4) == b"echo"
    assert daemon.stop() == 0
