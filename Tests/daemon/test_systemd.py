"""systemd integration with the real thing: evserved started by Debian's systemd-socket-activate (socket
activation: --listen systemd://, systemd://NAME), sockets passed with subprocess's pass_fds (--listen fd://N),
readiness read from the test's own NOTIFY_SOCKET (READY=1, STATUS=, STOPPING=1, WATCHDOG=1), and the example
units checked by systemd-analyze verify."""
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import (BINARY, ROOT, TIMEOUT, DatagramClient, Daemon, connect_url, recv_until, run_evserved,
                      short_unix_path, starting, wait_for)
from test_reload import exit_status, subreaper  # noqa: F401 (a fixture)

ACTIVATE = shutil.which("systemd-socket-activate")
pytestmark = pytest.mark.skipif(ACTIVATE is None, reason="systemd-socket-activate missing: run make deps")


def free_port(kind=socket.SOCK_STREAM):
    """A port free right now on 127.0.0.1, for systemd-socket-activate (which wants a number)."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class NotifySocket:
    """The service manager's side of sd_notify: a datagram socket whose path goes into NOTIFY_SOCKET."""

    def __init__(self):
        self.path = short_unix_path("notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []

    def receive(self, timeout=TIMEOUT):
        """The next message as a list of lines, or None when none comes within `timeout`."""
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            return None
        message = self.sock.recv(4096).decode().split("\n")
        self.messages.append(message)
        return message

    def wait_for(self, line, timeout=TIMEOUT):
        """Reads messages until one has `line`; returns it (fails the test when none comes)."""
        while True:
            message = self.receive(timeout)
            assert message is not None, f"no {line!r} from evserved; got {self.messages}"
            if line in message:
                return message

    def close(self):
        self.sock.close()
        os.unlink(self.path)


@pytest.fixture
def notify():
    sock = NotifySocket()
    yield sock
    sock.close()


class Activated(Daemon):
    """evserved run by systemd-socket-activate: it binds `listen` (its -l arguments, with `options` such as
    --datagram or --fdname=...), waits for the first client, then executes evserved in its own process
    (so the pid is evserved's) with LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES and the `environment` given.
    `trigger` makes that first client, before the listening lines are read."""

    def __init__(self, listen, args, trigger, options=(), environment=(), listeners=None, chain=()):
        """`chain`: programs between systemd-socket-activate and evserved (another systemd-socket-activate)."""
        activator = [ACTIVATE]
        for address in listen:
            activator += ["-l", address]
        activator += list(options)
        for variable in environment:
            activator += ["-E", variable]
        self.trigger = trigger
        self.bound = len(listen)
        try:
            super().__init__(*args, listeners=listeners, prefix=[*activator, *chain])
        except BaseException:
            if hasattr(self, "process"):  # no fixture holds it yet: leave nothing running
                self.process.kill()
                self.process.wait()
            raise

    def _read_listening_line(self):
        if self.trigger:
            self.trigger, trigger = None, self.trigger
            # Its "Listening on ADDRESS as N." lines (standard error) say when it has bound its sockets.
            assert wait_for(lambda: self.stderr_text().count("Listening on") >= self.bound), self.stderr_text()
            self.first_client = trigger()
        return super()._read_listening_line()


@pytest.fixture
def activated():
    yield from starting(Activated)


def ask(sock, line):
    """Sends one line to the upper service and returns its answer."""
    sock.sendall(line)
    return recv_until(sock, lambda data: b"\n" in data)


def tcp_client(port):
    return lambda: socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)


def test_tcp_socket_adopted_ready_status_and_stopping(activated, notify):
    port = free_port()
    daemon = activated([f"127.0.0.1:{port}"], ["--listen", "systemd://?service=upper"], tcp_client(port),
                       environment=[f"NOTIFY_SOCKET={notify.path}"])
    assert daemon.urls == [f"tcp://127.0.0.1:{port}"]
    ready = notify.wait_for("READY=1")
    assert "STATUS=serving 1 listener" in ready
    # READY=1 comes once the socket serves: the client that woke systemd-socket-activate, and a new one.
    assert ask(daemon.first_client, b"first\n") == b"FIRST\n"
    with daemon.connect() as client:
        assert ask(client, b"second\n") == b"SECOND\n"
    daemon.first_client.close()
    assert daemon.stop() == 0
    stopping = notify.wait_for("STOPPING=1")
    assert any(line.startswith("STATUS=draining") for line in stopping)


def test_kinds_read_from_the_sockets(activated):
    """TCP, UDP, Unix stream and Unix datagram sockets passed together: each served as its kind, each
    listening line its real URL; an inherited Unix socket's file is left alone at exit."""
    tcp, udp = free_port(), free_port(socket.SOCK_DGRAM)
    stream_path, datagram_path = short_unix_path("stream"), short_unix_path("dgram")
    # systemd-socket-activate passes on the sockets it was given: one for streams, one for datagrams.
    inner = [ACTIVATE, "--datagram", "-l", f"127.0.0.1:{udp}", "-l", datagram_path]
    daemon = activated([f"127.0.0.1:{tcp}", stream_path], ["--listen", "systemd://"], tcp_client(tcp),
                       listeners=4, chain=inner)
    assert sorted(daemon.urls) == sorted([f"tcp://127.0.0.1:{tcp}", f"udp://127.0.0.1:{udp}",
                                          f"unix://{stream_path}", f"unixgram://{datagram_path}"])
    daemon.first_client.sendall(b"tcp")
    assert recv_until(daemon.first_client, lambda data: len(data) >= 3) == b"tcp"
    with connect_url(f"unix://{stream_path}") as client:
        client.sendall(b"unix")
        assert recv_until(client, lambda data: len(data) >= 4) == b"unix"
    for url in (f"udp://127.0.0.1:{udp}", f"unixgram://{datagram_path}"):
        with DatagramClient(url) as client:
            assert client.ask(b"datagram") == b"datagram"
    daemon.first_client.close()
    assert daemon.stop() == 0
    assert os.path.exists(stream_path) and os.path.exists(datagram_path)


def test_names_pick_sockets(activated):
    upper, daytime = free_port(), free_port()
    daemon = activated(
        [f"127.0.0.1:{upper}", f"127.0.0.1:{daytime}"],
        ["--listen", "systemd://clock?service=daytime", "--listen", "systemd://shout?service=upper"],
        tcp_client(upper), options=["--fdname=shout:clock"],
    )
    assert daemon.urls == [f"tcp://127.0.0.1:{daytime}", f"tcp://127.0.0.1:{upper}"]
    assert ask(daemon.first_client, b"abc\n") == b"ABC\n"
    with daemon.connect(0) as client:
        assert recv_until(client, lambda data: data.endswith(b"\r\n")).endswith(b"-UTC\r\n")
    daemon.first_client.close()
    assert daemon.stop() == 0


def test_unknown_name_is_refused(activated):
    port = free_port()
    activator = [ACTIVATE, "-l", f"127.0.0.1:{port}", "--fdname=web", BINARY, "--listen", "systemd://admin"]
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(activator, stdout=subprocess.PIPE, stderr=stderr)
        text = lambda: os.pread(stderr.fileno(), 1 << 16, 0).decode()
        try:
            assert wait_for(lambda: "Listening on" in text()), text()
            with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT):
                assert process.wait(TIMEOUT) == 1
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert "no socket named 'admin' among those systemd passed (names: web)" in text(), text()


def test_watchdog_every_half_of_watchdog_usec(activated, notify):
    port = free_port()
    daemon = activated([f"127.0.0.1:{port}"], ["--listen", "systemd://"], tcp_client(port),
                       environment=[f"NOTIFY_SOCKET={notify.path}", "WATCHDOG_USEC=1000000"])
    notify.wait_for("READY=1")
    times = []
    for _ in range(4):
        notify.wait_for("WATCHDOG=1", timeout=2.0)
        times.append(time.monotonic())
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    # Every half second (half of WATCHDOG_USEC): well within the second systemd allows, and not more often.
    assert all(0.35 <= gap <= 0.8 for gap in gaps), gaps
    daemon.first_client.close()
    assert daemon.stop() == 0


def test_watchdog_of_another_process_is_not_fed(activated, notify):
    port = free_port()
    daemon = activated([f"127.0.0.1:{port}"], ["--listen", "systemd://"], tcp_client(port),
                       environment=[f"NOTIFY_SOCKET={notify.path}", "WATCHDOG_USEC=100000", "WATCHDOG_PID=1"])
    notify.wait_for("READY=1")
    assert notify.receive(timeout=0.5) is None  # five watchdog periods: nothing
    daemon.first_client.close()
    assert daemon.stop() == 0


def test_workers_serve_adopted_sockets_and_children_see_no_listen_variables(activated, notify):
    port = free_port()
    daemon = activated([f"127.0.0.1:{port}"], ["--listen", "systemd://?service=upper", "--workers", "2"],
                       tcp_client(port), environment=[f"NOTIFY_SOCKET={notify.path}"])
    assert daemon.urls == [f"tcp://127.0.0.1:{port}"]
    ready = notify.wait_for("READY=1")
    assert "STATUS=serving 1 listeners with 2 workers" in ready
    with open(f"/proc/{daemon.process.pid}/task/{daemon.process.pid}/children") as listing:
        workers = [int(pid) for pid in listing.read().split()]
    assert len(workers) == 2
    for pid in [daemon.process.pid, *workers]:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            names = [entry.split(b"=", 1)[0] for entry in environ.read().split(b"\0")]
        # The supervisor's own environ shows what it was started with; its children never got them.
        if pid != daemon.process.pid:
            assert not any(name.startswith(b"LISTEN_") for name in names), names
    assert ask(daemon.first_client, b"worker\n") == b"WORKER\n"
    daemon.first_client.close()
    assert daemon.stop() == 0
    notify.wait_for("STOPPING=1")


def test_fd_n_adopts_an_inherited_socket():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    number = listener.fileno()
    daemon = Daemon("--listen", f"fd://{number}?service=upper", pass_fds=[number])
    listener.close()  # evserved has its own copy
    try:
        assert daemon.urls == [f"tcp://127.0.0.1:{port}"]
        with daemon.connect() as client:
            assert ask(client, b"inherited\n") == b"INHERITED\n"
        # Adopted close-on-exec: no program evserved would run inherits it.
        with open(f"/proc/{daemon.process.pid}/fdinfo/{number}") as info:
            flags = int(next(line for line in info if line.startswith("flags:")).split()[1], 8)
        assert flags & 0o2000000, "FD_CLOEXEC (O_CLOEXEC) not set on the adopted socket"
    finally:
        assert daemon.stop() == 0


def run_with_fd(sock_or_fd, url_number=None):
    number = sock_or_fd if isinstance(sock_or_fd, int) else sock_or_fd.fileno()
    url = f"fd://{url_number if url_number is not None else number}"
    result = subprocess.run([BINARY, "--listen", url], capture_output=True, timeout=TIMEOUT, pass_fds=[number])
    return result.returncode, result.stderr.decode()


def test_fd_n_errors():
    read_end, write_end = os.pipe()
    try:
        status, stderr = run_with_fd(read_end)
        assert status == 1 and f"descriptor {read_end} is not a socket" in stderr, stderr
    finally:
        os.close(read_end)
        os.close(write_end)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as unlistening:
        unlistening.bind(("127.0.0.1", 0))
        status, stderr = run_with_fd(unlistening)
        assert status == 1 and "is a stream socket that is not listening" in stderr, stderr
    status, stderr = run_evserved("--listen", "fd://200")
    assert status == 1 and "descriptor 200 is not open" in stderr, stderr
    status, stderr = run_evserved("--listen", "fd://x")
    assert status == 1 and "expected fd://N" in stderr, stderr
    assert stderr.count("\n") == 1


def test_systemd_without_sockets_is_refused():
    status, stderr = run_evserved("--listen", "systemd://")
    assert status == 1
    assert "systemd passed no sockets (LISTEN_PID and LISTEN_FDS are not set)" in stderr, stderr
    # LISTEN_PID of another process: the sockets are not ours (as sd_listen_fds says).
    environment = dict(os.environ, LISTEN_PID="1", LISTEN_FDS="1")
    result = subprocess.run([BINARY, "--listen", "systemd://"], capture_output=True, timeout=TIMEOUT,
                            env=environment)
    assert result.returncode == 1
    assert "LISTEN_PID is 1, not this process's pid" in result.stderr.decode()


def test_example_units_verify(tmp_path):
    """contrib/systemd's units pass systemd-analyze verify (with ExecStart pointing at the built binary)."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze missing: run make deps"
    source = os.path.join(ROOT, "contrib", "systemd")
    for name in ("evserved.service", "evserved.socket"):
        with open(os.path.join(source, name)) as unit:
            text = unit.read()
        with open(tmp_path / name, "w") as copy:
            copy.write(text.replace("/usr/local/bin/evserved", BINARY))
    assert "Type=notify" in (tmp_path / "evserved.service").read_text()
    assert "--listen systemd://" in (tmp_path / "evserved.service").read_text()
    result = subprocess.run([analyze, "verify", "evserved.socket", "evserved.service"], cwd=tmp_path,
                            capture_output=True, timeout=60)
    # A setting systemd cannot parse is only a warning: any output fails the check too.
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr.decode()


def test_sighup_reload_the_new_process_takes_the_passed_socket_and_becomes_the_main_pid(
        activated, notify, subreaper):
    port = free_port()
    daemon = activated([f"127.0.0.1:{port}"], ["--listen", "systemd://?service=upper"], tcp_client(port),
                       environment=[f"NOTIFY_SOCKET={notify.path}"])
    notify.wait_for("READY=1")
    daemon.process.send_signal(signal.SIGHUP)
    ready = notify.wait_for("READY=1")
    main = [line for line in ready if line.startswith("MAINPID=")]
    assert main, ready
    new = int(main[0].split("=", 1)[1])
    subreaper.append(new)
    assert new != daemon.process.pid
    # The connection open at the reload finishes on the old process; new clients reach the new one.
    assert ask(daemon.first_client, b"old\n") == b"OLD\n"
    with daemon.connect() as client:
        assert ask(client, b"new\n") == b"NEW\n"
    daemon.first_client.close()
    assert daemon.process.wait(TIMEOUT) == 0
    while notify.receive(timeout=0):  # what the old process sent is queued by now
        pass
    assert not any("STOPPING=1" in message for message in notify.messages), notify.messages
    with daemon.connect() as client:
        assert ask(client, b"still\n") == b"STILL\n"
    os.kill(new, signal.SIGTERM)
    notify.wait_for("STOPPING=1")
    assert exit_status(new) == 0
