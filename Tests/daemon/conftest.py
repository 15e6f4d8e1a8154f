"""Helpers for the evserved daemon tests: spawn the real binary, read its `listening` lines, talk to it
with Python's socket module (an independent client), stop it with a signal."""
import os
import re
import select
import signal
import socket
import subprocess
import tempfile
import time

import pytest

MODES = ["event", "sync", "thread", "pool", "async"]
SERVICES = ["echo", "upper", "daytime", "discard", "chargen"]
DAYTIME = re.compile(rb"\w+, \w+ \d\d, \d{4} \d\d:\d\d:\d\d-\w+\r\n")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("EVSERVED", os.path.join(ROOT, ".build", "debug", "evserved"))
TIMEOUT = 10.0


def short_unix_path(tag):
    """A fresh Unix socket path well under the 107-byte limit."""
    directory = tempfile.mkdtemp(prefix="evs-", dir="/tmp")
    return os.path.join(directory, tag + ".sock")


class Daemon:
    """One running evserved process."""

    def __init__(self, *args, listeners=None, prefix=(), binary=BINARY, **popen):
        """`prefix`: a command that runs evserved (`prlimit --as=...`); `binary`: another copy of it; `popen`:
        more arguments for Popen (`pass_fds`, `env`)."""
        self.args = [*prefix, binary, *args]
        self.stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=self.stderr, **popen)
        self._pending = b""
        expected = listeners if listeners is not None else sum(1 for a in args if a == "--listen")
        self.urls = [self._read_listening_line() for _ in range(expected)]
        # --metrics-listen: one more line, `metrics http://HOST:PORT/metrics`, after the listening lines.
        self.metrics_url = self._read_stdout_line("metrics") if "--metrics-listen" in args else None

    def _read_stdout_line(self, word):
        """Reads the next stdout line, which must be `WORD URL`; returns the URL."""
        deadline = time.monotonic() + TIMEOUT
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"evserved printed no listening line in time: {self.stderr_text()}")
            ready, _, _ = select.select([self.process.stdout], [], [], remaining)
            if ready:
                chunk = os.read(self.process.stdout.fileno(), 4096)
                if not chunk:
                    raise AssertionError(f"evserved exited before listening: {self.stderr_text()}")
                self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        match = re.fullmatch(word + r" (\S+)", line.decode())
        assert match, f"unexpected stdout line {line!r}"
        return match.group(1)

    def _read_listening_line(self):
        return self._read_stdout_line("listening")

    def stderr_text(self):
        # pread, not seek + read: the daemon shares this file's offset, and a seek(0) while it runs would
        # make its next line overwrite the start of the file.
        descriptor = self.stderr.fileno()
        return os.pread(descriptor, os.fstat(descriptor).st_size, 0).decode(errors="replace")

    def connect(self, index=0):
        return connect_url(self.urls[index])

    def stop(self, sig=signal.SIGTERM):
        """Sends `sig` and returns the exit status (fails the test if it takes longer than TIMEOUT)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"evserved did not exit within {TIMEOUT}s of {sig!r}")


def connect_url(url, receive_buffer=None):
    """A connected client; `receive_buffer` sets SO_RCVBUF before connecting, so the window the client offers
    is that small from the handshake on (set afterwards, the kernel keeps the larger window it offered)."""
    if url.startswith("unix://"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(TIMEOUT)
        sock.connect(url[len("unix://"):])
        return sock
    match = re.fullmatch(r"tcp://\[?([^\]]*?)\]?:(\d+)", url)
    assert match, url
    host, port = match.group(1), int(match.group(2))
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT)
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect((host, port))
    return sock


class DatagramClient:
    """A datagram client for a udp:// or unixgram:// URL; on Unix it binds a path of its own (so the
    server can reply) unless bind=False."""

    def __init__(self, url, bind=True, timeout=TIMEOUT):
        self.path = None
        if url.startswith("unixgram://"):
            self.target = url[len("unixgram://"):]
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            if bind:
                self.path = short_unix_path("client")
                self.sock.bind(self.path)
        else:
            match = re.fullmatch(r"udp://\[?([^\]]*?)\]?:(\d+)", url)
            assert match, url
            self.target = (match.group(1), int(match.group(2)))
            family = socket.AF_INET6 if ":" in self.target[0] else socket.AF_INET
            self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.settimeout(timeout)

    def send(self, payload):
        self.sock.sendto(payload, self.target)

    def receive(self, size=70_000):
        return self.sock.recv(size)

    def ask(self, payload):
        self.send(payload)
        return self.receive()

    def receives_nothing(self, within=0.3):
        ready, _, _ = select.select([self.sock], [], [], within)
        return not ready

    def close(self):
        self.sock.close()
        if self.path:
            os.unlink(self.path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def process_figures(pid):
    """(threads, resident KiB) of a process, from /proc."""
    threads = rss = None
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("Threads:"):
                threads = int(line.split()[1])
            elif line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return threads, rss


def recv_until(sock, predicate, limit=1 << 26):
    data = b""
    while not predicate(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        assert len(data) <= limit, "more data than expected"
    return data


def recv_all(sock):
    return recv_until(sock, lambda _: False)


def recv_until_closed(sock):
    """Reads until the server ends the connection; returns (data, how): how is "closed" (FIN) or "reset"
    (RST, with the bytes that came before it). A read timeout raises: it is not an end."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data, "reset"
        if not chunk:
            return data, "closed"
        data += chunk


def wait_for(predicate, timeout=TIMEOUT, interval=0.02):
    """Polls `predicate` until it is true (returns True) or `timeout` seconds pass (returns False: the caller
    asserts)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (for programs that need a port in their config)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tcp_address(url):
    host, port = url[len("tcp://"):].rsplit(":", 1)
    return host.strip("[]"), int(port)


def base_url(transport, service):
    """A fresh listener URL: tcp4, tcp6, unix (stream) or udp4, udp6, unixgram (datagram)."""
    return {
        "tcp4": "tcp://127.0.0.1:0",
        "tcp6": "tcp://[::1]:0",
        "udp4": "udp://127.0.0.1:0",
        "udp6": "udp://[::1]:0",
    }.get(transport) or f"{'unix' if transport == 'unix' else 'unixgram'}://" + short_unix_path(service)


def service_daemon(mode, transports, *flags):
    """One daemon in `mode` with a listener for each transport x service (each with its own service);
    `daemon.by_key[(transport, service)]` is its URL."""
    keys = [(t, s) for t in transports for s in SERVICES]
    args = []
    for transport, service in keys:
        args += ["--listen", f"{base_url(transport, service)}?service={service}"]
    daemon = Daemon(*args, "--mode", mode, *flags)
    daemon.by_key = dict(zip(keys, daemon.urls))
    daemon.mode = mode
    return daemon


def run_evserved(*args, timeout=TIMEOUT):
    """Runs evserved expecting it to exit by itself (bad input); returns (status, stderr)."""
    result = subprocess.run([BINARY, *args], capture_output=True, timeout=timeout)
    return result.returncode, result.stderr.decode(errors="replace")


def starting(make, before_kill=lambda started: None):
    """For a fixture: yields a function that starts processes with `make` (objects with a `process`), and at
    the end kills whatever still runs (after `before_kill(it)`) and checks that none printed a sanitizer
    report (under `make sanitize` the programs are built with one)."""
    started = []

    def start(*args, **kwargs):
        item = make(*args, **kwargs)
        started.append(item)
        return item

    yield start
    for item in started:
        if item.process.poll() is None:
            before_kill(item)
            item.process.kill()
            item.process.wait()
    for item in started:
        report = item.stderr_text()
        assert "Sanitizer" not in report, f"sanitizer report from {item.process.args}:\n{report[-6000:]}"


def kill_workers(daemon):
    """--workers: the worker processes of a daemon about to be killed go too."""
    pid = daemon.process.pid
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as listing:
            for child in listing.read().split():
                os.kill(int(child), signal.SIGKILL)
    except OSError:
        pass


@pytest.fixture
def daemon_factory():
    yield from starting(Daemon, before_kill=kill_workers)
