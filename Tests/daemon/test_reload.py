"""SIGHUP reloads evserved without downtime (issue 14): a fresh process of the same executable file and
arguments takes the listening sockets over, the old one drains its open connections and exits 0. Under a
flood of new connections none is refused or reset; a connection open at the reload finishes on the old
process; Unix socket files and the pid file pass to the new process; a new process that fails leaves the
old one serving. With --workers the supervisor replaces its workers one by one."""
import ctypes
import os
import shutil
import signal
import socket
import threading
import time

import pytest

from conftest import (BINARY, TIMEOUT, DatagramClient, connect_url, recv_until, short_unix_path,
                      wait_for)

PR_SET_CHILD_SUBREAPER = 36


@pytest.fixture
def subreaper():
    """Makes this test process the subreaper of the daemons it starts, so that a new process a reload
    started (an orphan once the old one exits) becomes our child: we can read its exit status and no
    generation outlives the test."""
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    adopted = []
    yield adopted
    for pid in adopted:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def read_pid(path):
    try:
        with open(path) as file:
            return int(file.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def exit_status(pid, timeout=TIMEOUT):
    """Waits for `pid` (a child of ours: started by us, or adopted as its parent's subreaper) to exit."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if done == pid:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    raise AssertionError(f"process {pid} did not exit within {timeout}s")


def reload(daemon, pid_file, adopted):
    """Sends SIGHUP to the process the pid file names and waits until a new one has written it and printed
    its listening lines; returns (old pid, new pid)."""
    old = read_pid(pid_file)
    os.kill(old, signal.SIGHUP)
    assert wait_for(lambda: read_pid(pid_file) not in (None, old)), f"a new pid: {daemon.stderr_text()}"
    new = read_pid(pid_file)
    adopted.append(new)
    for _ in daemon.urls:
        daemon._read_listening_line()
    return old, new


def echo(url, payload=b"ping\n"):
    with connect_url(url) as sock:
        sock.sendall(payload)
        return recv_until(sock, lambda data: data.endswith(b"\n"))


class Flood:
    """Threads that open connection after connection (one line echoed on each) and count what went
    wrong by kind; bounded by `limit` connections and `seconds`."""

    def __init__(self, url, threads=4, limit=15_000, seconds=60):
        self.url, self.limit, self.deadline = url, limit, time.monotonic() + seconds
        self.served = 0
        self.failures = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run) for _ in range(threads)]
        for thread in self.threads:
            thread.start()

    def _run(self):
        while not self.stopping.is_set() and time.monotonic() < self.deadline:
            with self.lock:
                if self.served + len(self.failures) >= self.limit:
                    return
            try:
                reply = echo(self.url)
                failure = None if reply == b"ping\n" else f"reply {reply!r}"
            except OSError as error:
                failure = type(error).__name__
            with self.lock:
                if failure:
                    self.failures.append(failure)
                else:
                    self.served += 1

    def count(self):
        with self.lock:
            return self.served

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join()


def test_sighup_hands_the_sockets_to_a_new_process_and_the_old_one_drains_and_exits_0(
        daemon_factory, subreaper, tmp_path):
    pid_file = str(tmp_path / "evserved.pid")
    unix = short_unix_path("reload")
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--listen", f"unix://{unix}",
                            "--listen", "udp://127.0.0.1:0", "--pid-file", pid_file)
    assert read_pid(pid_file) == daemon.process.pid
    old, new = reload(daemon, pid_file, subreaper)
    assert old == daemon.process.pid and new != old
    assert daemon.process.wait(TIMEOUT) == 0, daemon.stderr_text()
    assert "reloaded: the new process serves" in daemon.stderr_text()
    # The new process serves every listener, on the same sockets (the same Unix file, the same ports).
    assert os.path.exists(unix), "the old process left the socket file to the new one"
    assert echo(daemon.urls[0]) == b"ping\n"
    assert echo(daemon.urls[1]) == b"ping\n"
    with DatagramClient(daemon.urls[2]) as client:
        assert client.ask(b"datagram") == b"datagram"
    assert read_pid(pid_file) == new
    # At its exit the new process removes the files it took over.
    os.kill(new, signal.SIGTERM)
    assert exit_status(new) == 0
    assert not os.path.exists(unix) and not os.path.exists(pid_file)


def test_no_connection_is_refused_or_reset_under_a_flood_across_three_reloads(
        daemon_factory, subreaper, tmp_path):
    pid_file = str(tmp_path / "evserved.pid")
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--pid-file", pid_file)
    flood = Flood(daemon.urls[0])
    try:
        generations = [daemon.process.pid]
        for _ in range(3):
            before = flood.count()
            assert wait_for(lambda: flood.count() >= before + 200), "the flood to go on"
            old, new = reload(daemon, pid_file, subreaper)
            generations.append(new)
            status = daemon.process.wait(TIMEOUT) if old == daemon.process.pid else exit_status(old)
            assert status == 0, daemon.stderr_text()
        before = flood.count()
        assert wait_for(lambda: flood.count() >= before + 200), "the last process to serve the flood"
    finally:
        flood.stop()
    assert flood.failures == [], f"{len(flood.failures)} of {flood.served}: {flood.failures[:10]}"
    assert len(set(generations)) == 4
    os.kill(generations[-1], signal.SIGTERM)
    assert exit_status(generations[-1]) == 0


def test_a_connection_open_at_the_reload_finishes_on_the_old_process(daemon_factory, subreaper, tmp_path):
    pid_file = str(tmp_path / "evserved.pid")
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--pid-file", pid_file, "--drain-timeout", "30")
    held = connect_url(daemon.urls[0])
    held.sendall(b"before\n")
    assert recv_until(held, lambda data: data.endswith(b"\n")) == b"before\n"
    _, new = reload(daemon, pid_file, subreaper)
    assert echo(daemon.urls[0]) == b"ping\n"  # new clients: the new process
    assert daemon.process.poll() is None, "the old process waits for its open connection"
    held.sendall(b"after\n")
    assert recv_until(held, lambda data: data.endswith(b"\n")) == b"after\n"
    held.close()
    assert daemon.process.wait(TIMEOUT) == 0
    os.kill(new, signal.SIGTERM)
    assert exit_status(new) == 0


def test_reload_starts_the_executable_file_as_it_is_now_and_a_failing_one_leaves_the_old_serving(
        daemon_factory, subreaper, tmp_path):
    binary = str(tmp_path / "evserved")
    shutil.copy(BINARY, binary)
    pid_file = str(tmp_path / "evserved.pid")
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--pid-file", pid_file, binary=binary)
    # An upgrade that does not start: the old process says so and goes on serving.
    replace_file(binary, "#!/bin/sh\necho 'evserved: error: broken build' >&2\nexit 3\n")
    daemon.process.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "reload failed" in daemon.stderr_text()), daemon.stderr_text()
    assert "broken build" in daemon.stderr_text()
    assert read_pid(pid_file) == daemon.process.pid and echo(daemon.urls[0]) == b"ping\n"
    # A working upgrade: the new process runs the file now at the path, not the old one's deleted copy.
    replace_file(binary, open(BINARY, "rb").read())
    _, new = reload(daemon, pid_file, subreaper)
    assert os.readlink(f"/proc/{new}/exe") == binary
    assert daemon.process.wait(TIMEOUT) == 0
    assert echo(daemon.urls[0]) == b"ping\n"
    os.kill(new, signal.SIGTERM)
    assert exit_status(new) == 0


def replace_file(path, content):
    """Installs `content` at `path` as a package upgrade does: a new file renamed over the old one."""
    fresh = path + ".new"
    with open(fresh, "wb") as file:
        file.write(content.encode() if isinstance(content, str) else content)
    os.chmod(fresh, 0o755)
    os.rename(fresh, path)


def worker_pids(supervisor):
    with open(f"/proc/{supervisor}/task/{supervisor}/children") as children:
        return sorted(int(pid) for pid in children.read().split())


def test_with_workers_sighup_replaces_them_one_by_one_and_no_connection_fails(daemon_factory):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--workers", "2")
    assert wait_for(lambda: len(worker_pids(daemon.process.pid)) == 2)
    before = worker_pids(daemon.process.pid)
    flood = Flood(daemon.urls[0])
    try:
        assert wait_for(lambda: flood.count() >= 200), "the flood to start"
        daemon.process.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "reloaded: every worker replaced" in daemon.stderr_text()), daemon.stderr_text()
        assert wait_for(lambda: len(worker_pids(daemon.process.pid)) == 2), "the replaced workers to finish"
        after = worker_pids(daemon.process.pid)
        served = flood.count()
        assert wait_for(lambda: flood.count() >= served + 200), "the new workers to serve the flood"
    finally:
        flood.stop()
    assert not set(before) & set(after), (before, after)
    assert flood.failures == [], f"{len(flood.failures)} of {flood.served}: {flood.failures[:10]}"
    assert daemon.process.poll() is None
    assert daemon.stop() == 0


def test_reload_keeps_the_program_of_exec(daemon_factory, subreaper, tmp_path):
    pid_file = str(tmp_path / "evserved.pid")
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--pid-file", pid_file, "--", "/bin/cat")
    assert echo(daemon.urls[0]) == b"ping\n"
    _, new = reload(daemon, pid_file, subreaper)
    assert daemon.process.wait(TIMEOUT) == 0
    assert echo(daemon.urls[0], b"after the reload\n") == b"after the reload\n"
    with open(f"/proc/{new}/cmdline", "rb") as cmdline:
        assert cmdline.read().split(b"\0")[-3:-1] == [b"--", b"/bin/cat"]
    os.kill(new, signal.SIGTERM)
    assert exit_status(new) == 0


def test_reload_hands_the_metrics_socket_over_and_no_other_process_can_join_its_port(
        daemon_factory, subreaper, tmp_path):
    from test_metrics import scrape
    pid_file = str(tmp_path / "evserved.pid")
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--pid-file", pid_file,
                            "--metrics-listen", "tcp://127.0.0.1:0")
    assert scrape(daemon)[0] == 200
    _, new = reload(daemon, pid_file, subreaper)
    assert daemon._read_stdout_line("metrics") == daemon.metrics_url  # the same port, the same socket
    assert daemon.process.wait(TIMEOUT) == 0
    status, _, body = scrape(daemon)
    assert status == 200 and "evserved_connections_accepted_total" in body
    port = int(daemon.metrics_url.rsplit(":", 1)[1].split("/")[0])
    intruder = socket.socket()
    intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    with pytest.raises(OSError):
        intruder.bind(("127.0.0.1", port))
    intruder.close()
    os.kill(new, signal.SIGTERM)
    assert exit_status(new) == 0


def test_after_a_reload_a_second_signal_still_removes_the_socket_file(daemon_factory, subreaper, tmp_path):
    pid_file = str(tmp_path / "evserved.pid")
    unix = short_unix_path("second")
    daemon = daemon_factory("--listen", f"unix://{unix}", "--pid-file", pid_file, "--drain-timeout", "30")
    _, new = reload(daemon, pid_file, subreaper)
    assert daemon.process.wait(TIMEOUT) == 0 and os.path.exists(unix)
    held = connect_url(daemon.urls[0])  # keeps the new process draining
    assert echo(daemon.urls[0]) == b"ping\n"
    drains = daemon.stderr_text().count("shutting down")  # the old process's, in the shared log
    os.kill(new, signal.SIGTERM)
    assert wait_for(lambda: daemon.stderr_text().count("shutting down") == drains + 1), "the new one drains"
    os.kill(new, signal.SIGTERM)
    assert exit_status(new) == 1
    assert not os.path.exists(unix), "the file the new process took over goes with it"
    held.close()
