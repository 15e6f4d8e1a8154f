"""A real redis-server (Debian's: `make deps` installs it) on loopback for the daemon tests, and a chat client
of evserved's `chat` service (`--registry redis://...` shares its rooms through that Redis)."""
import re
import shutil
import signal
import socket
import subprocess

import pytest

from conftest import TIMEOUT, connect_url, free_port, tcp_address, wait_for

REDIS = shutil.which("redis-server")
MESSAGE = re.compile(r"\[(\d+)\] (.*)\n")


class Redis:
    """A throwaway redis-server on a loopback port: no persistence, bounded memory; `stop()` and `start()`
    again on the same port make an outage."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.start()

    def start(self):
        self.process = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--maxmemory", "64mb"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(self.answers), "redis-server did not answer PING"

    def answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/test"


@pytest.fixture
def redis():
    if REDIS is None:
        pytest.fail("redis-server is not installed: run `make deps` (it installs Debian's redis-server)")
    server = Redis()
    yield server
    server.stop()


def log_count(daemon, text):
    return daemon.stderr_text().count(text)


def wait_connected(daemon, processes=1, times=1):
    """Every one of the daemon's `processes` (workers) logged `registry connected` `times` times."""
    assert wait_for(lambda: log_count(daemon, "registry connected") >= processes * times), daemon.stderr_text()


class ChatClient:
    """A chat client of `url` (bound to `source` when given): sendall, and lines read as they come."""

    def __init__(self, url, source=None):
        if source is None:
            self.sock = connect_url(url)
        else:
            self.sock = socket.create_connection(tcp_address(url), timeout=TIMEOUT, source_address=(source, 0))
        self.pending = b""

    def send(self, line):
        self.sock.sendall(line.encode() + b"\n")

    def line(self, timeout=TIMEOUT):
        self.sock.settimeout(timeout)
        while b"\n" not in self.pending:
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError("the server closed the connection")
            self.pending += data
        line, _, self.pending = self.pending.partition(b"\n")
        return line.decode() + "\n"

    def join(self, room):
        self.send(f"/join {room}")
        assert self.line() == f"* joined {room}\n"

    def messages(self, count):
        """The next `count` chat lines as (sender's connection id, text)."""
        found = []
        for _ in range(count):
            match = MESSAGE.fullmatch(self.line())
            assert match, "not a chat line"
            found.append((int(match.group(1)), match.group(2)))
        return found

    def texts(self, count):
        """The texts of the next `count` chat lines."""
        return [text for _, text in self.messages(count)]

    def hears_nothing(self, within=0.3):
        if self.pending:
            return False
        self.sock.settimeout(within)
        try:
            self.sock.recv(1)
        except socket.timeout:
            return True
        return False

    def close(self):
        self.sock.close()

