"""The real HAProxy (Debian's haproxy: `make deps` installs it) in front of evserved, for the daemon tests:
one frontend per backend on 127.0.0.1, servers that send PROXY protocol headers and are health-checked."""
import os
import shutil
import socket
import subprocess
import tempfile

import pytest

from conftest import TIMEOUT, free_port, recv_until_closed, tcp_address, wait_for


class HAProxy:
    """haproxy in the foreground (-db) with a config in a temporary directory; `stat(backend)` reads its
    stats socket."""

    def __init__(self, backends, client_timeout="10s"):
        """`backends`: name -> one server, (evserved URL, "send-proxy" or "send-proxy-v2"), or a list of them
        (round robin). Server `index` of backend `name` is `s_{name}_{index}`; every server is checked every
        100 ms (`check check-send-proxy`: v2 sends a LOCAL header, v1 a PROXY line)."""
        self.directory = tempfile.mkdtemp(prefix="evs-haproxy-")
        self.stats_path = os.path.join(self.directory, "stats.sock")
        self.ports = {name: free_port() for name in backends}
        lines = [
            "global", f"    stats socket {self.stats_path} level admin", "    maxconn 200",
            "defaults", "    mode tcp", "    timeout connect 2s", f"    timeout client {client_timeout}",
            f"    timeout server {client_timeout}",
        ]
        for name, servers in backends.items():
            lines += [f"frontend fe_{name}", f"    bind 127.0.0.1:{self.ports[name]}", f"    default_backend be_{name}",
                      f"backend be_{name}", "    balance roundrobin"]
            for index, (url, send) in enumerate(servers if isinstance(servers, list) else [servers]):
                host, port = tcp_address(url)
                lines.append(f"    server s_{name}_{index} {host}:{port} {send} check check-send-proxy inter 100ms")
        path = os.path.join(self.directory, "haproxy.cfg")
        with open(path, "w") as config:
            config.write("\n".join(lines) + "\n")
        self.log = open(os.path.join(self.directory, "haproxy.log"), "w+")
        self.process = subprocess.Popen(["haproxy", "-f", path, "-db"], stdout=self.log, stderr=subprocess.STDOUT)
        assert wait_for(lambda: os.path.exists(self.stats_path) or self.process.poll() is not None)
        assert self.process.poll() is None, self.log_text()
        assert wait_for(lambda: all(self.accepting(port) for port in self.ports.values())), self.log_text()

    def log_text(self):
        self.log.flush()
        with open(self.log.name) as log:
            return log.read()

    @staticmethod
    def accepting(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    def url(self, name):
        return f"tcp://127.0.0.1:{self.ports[name]}"

    def stat(self, name, index=0):
        """The `show stat` row of backend `name`'s server `index`, as a dict (status, check_status, ...)."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(TIMEOUT)
            sock.connect(self.stats_path)
            sock.sendall(b"show stat\n")
            text = recv_until_closed(sock)[0].decode()
        header, *rows = [line for line in text.splitlines() if line]
        keys = header.lstrip("# ").split(",")
        for row in rows:
            values = dict(zip(keys, row.split(",")))
            if values["pxname"] == f"be_{name}" and values["svname"] == f"s_{name}_{index}":
                return values
        raise AssertionError(f"no server row for {name} {index}: {text}")

    def checked_up(self, name, index=0):
        """The server is UP and its last check passed ("* L4OK" while the next one runs)."""
        row = self.stat(name, index)
        return row["status"] == "UP" and row["check_status"].lstrip("* ") == "L4OK"

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def haproxy():
    """`haproxy(backends)` starts one (see `HAProxy`); each is stopped at the end of the test."""
    if shutil.which("haproxy") is None:
        pytest.fail("haproxy is not installed: run `make deps` (it installs Debian's haproxy)")
    started = []

    def start(backends, **options):
        proxy = HAProxy(backends, **options)
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()
