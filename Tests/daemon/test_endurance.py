"""100 000 sequential connections per mode: descriptors, threads and memory come back to their baseline,
and the daemon still answers. A leak of one descriptor, one thread or 64 bytes per connection fails."""
import os
import socket
import time

import pytest

from conftest import process_figures

CONNECTIONS = int(os.environ.get("EVSERVED_ENDURANCE_CONNECTIONS", "100000"))
PAYLOAD = b"ping\n"


def open_descriptors(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def one_request(address):
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(PAYLOAD)
        received = b""
        while len(received) < len(PAYLOAD):
            chunk = sock.recv(64)
            assert chunk, "the daemon closed before echoing"
            received += chunk
        assert received == PAYLOAD


def settled(pid, descriptors, threads):
    """Waits (at most 10 s) until the daemon is back to `descriptors` open files and `threads` threads."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if open_descriptors(pid) <= descriptors and process_figures(pid)[0] <= threads:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("mode", ["event", "sync", "thread", "pool", "async"])
def test_100000_sequential_connections_leave_no_trace(daemon_factory, mode):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--mode", mode, "--threads", "4")
    pid = daemon.process.pid
    host, port = daemon.urls[0][len("tcp://"):].rsplit(":", 1)
    address = (host, int(port))
    # Warm up: pools, thread caches and malloc arenas reach their working size.
    for _ in range(2000):
        one_request(address)
    assert settled(pid, open_descriptors(pid), process_figures(pid)[0])
    descriptors = open_descriptors(pid)
    threads, rss = process_figures(pid)

    for _ in range(CONNECTIONS):
        one_request(address)

    assert settled(pid, descriptors, threads), (
        f"after {CONNECTIONS} connections: {open_descriptors(pid)} descriptors (baseline {descriptors}), "
        f"{process_figures(pid)[0]} threads (baseline {threads})"
    )
    grown = process_figures(pid)[1] - rss
    # 64 bytes per connection would be 6 250 KiB; allocator noise stays far below 2 MiB.
    assert grown < 2048, f"resident memory grew {grown} KiB over {CONNECTIONS} connections"
    one_request(address)
    assert daemon.stop() == 0
