"""--workers N: N supervised processes on shared SO_REUSEPORT listeners (socketserver's ForkingMixIn,
pre-forked): all serve, a dead one is replaced, SIGTERM drains every one, a second signal ends them at once."""
import os
import signal
import socket
import time

from conftest import DatagramClient, recv_until, run_evserved


def children(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as listing:
        return sorted(int(child) for child in listing.read().split())


def wait_for(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def echo(address, payload=b"x\n"):
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(payload)
        return recv_until(sock, lambda d: len(d) >= len(payload))


def tcp_address(url):
    host, port = url[len("tcp://"):].rsplit(":", 1)
    return host, int(port)


def test_workers_serve_tcp_and_udp_and_are_processes(daemon_factory):
    daemon = daemon_factory("--workers", "3", "--loops", "1", "--listen", "tcp://127.0.0.1:0",
                            "--listen", "udp://127.0.0.1:0?service=upper")
    assert len(children(daemon.process.pid)) == 3
    address = tcp_address(daemon.urls[0])
    for index in range(60):
        assert echo(address, b"%d\n" % index) == b"%d\n" % index
    client = DatagramClient(daemon.urls[1])
    try:
        assert client.ask(b"shout") == b"SHOUT"
    finally:
        client.close()
    assert daemon.stop() == 0
    stderr = daemon.stderr_text()
    # Each worker logs its share; all three served some of the 60 connections.
    shares = [line for line in stderr.splitlines() if "served per loop" in line]
    assert not shares  # one loop per worker: no per-loop line
    assert stderr.count("[evserved] started") == 3


def test_a_dead_worker_is_replaced_and_service_goes_on(daemon_factory):
    daemon = daemon_factory("--workers", "2", "--listen", "tcp://127.0.0.1:0")
    before = children(daemon.process.pid)
    os.kill(before[0], signal.SIGKILL)
    assert wait_for(lambda: len(children(daemon.process.pid)) == 2 and before[0] not in children(daemon.process.pid))
    address = tcp_address(daemon.urls[0])
    for _ in range(40):
        assert echo(address) == b"x\n"
    assert "worker died; starting another" in daemon.stderr_text()
    assert daemon.stop() == 0


def test_sigterm_drains_every_worker(daemon_factory):
    daemon = daemon_factory("--workers", "2", "--listen", "tcp://127.0.0.1:0")
    workers = children(daemon.process.pid)
    address = tcp_address(daemon.urls[0])
    open_connections = [socket.create_connection(address, timeout=10) for _ in range(6)]
    for sock in open_connections:  # each is accepted by one worker or the other
        sock.sendall(b"before\n")
        assert recv_until(sock, lambda d: d.endswith(b"\n")) == b"before\n"
    daemon.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    for sock in open_connections:  # still served while draining
        sock.sendall(b"during\n")
        assert recv_until(sock, lambda d: d.endswith(b"\n")) == b"during\n"
        sock.close()
    assert daemon.process.wait(15) == 0
    assert all(not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
               for pid in workers)


def test_a_second_signal_ends_the_workers_at_once(daemon_factory):
    daemon = daemon_factory("--workers", "2", "--listen", "tcp://127.0.0.1:0", "--drain-timeout", "60")
    held = socket.create_connection(tcp_address(daemon.urls[0]), timeout=10)  # keeps its worker draining
    held.sendall(b"x\n")
    recv_until(held, lambda d: d.endswith(b"\n"))
    daemon.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    started = time.monotonic()
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.process.wait(10) == 1
    assert time.monotonic() - started < 5
    held.close()


def test_workers_refuse_unix_listeners_and_bad_counts():
    status, stderr = run_evserved("--workers", "2", "--listen", "unix:///tmp/evs-workers.sock")
    assert status == 1 and "--workers cannot share the Unix socket" in stderr
    status, stderr = run_evserved("--workers=-1", "--listen", "tcp://127.0.0.1:0")
    assert status == 1 and "invalid --workers '-1': out of range: use 0 to" in stderr, stderr


def test_a_worker_that_cannot_bind_fails_the_start():
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        status, stderr = run_evserved("--workers", "2", "--listen", f"tcp://127.0.0.1:{holder.getsockname()[1]}")
        assert status != 0 and "in use" in stderr
    finally:
        holder.close()
