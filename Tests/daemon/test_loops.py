"""--loops N: a loop thread per loop sharing one listening socket (each its own SO_REUSEPORT socket only with
--reuse-port), connections spread over them, limits shared, shutdown and drain with every loop."""
import concurrent.futures
import re
import select
import socket
import time

import pytest

from conftest import DatagramClient, process_figures, recv_until, run_evserved


def echo_once(address, payload=b"x\n"):
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(payload)
        assert recv_until(sock, lambda d: len(d) >= len(payload)) == payload


def tcp_address(url):
    host, port = url[len("tcp://"):].rsplit(":", 1)
    return host.strip("[]"), int(port)


@pytest.mark.parametrize("mode,reuse_port", [("event", False), ("pool", False), ("event", True), ("pool", True)])
def test_connections_spread_over_the_loops_and_each_loop_reports_its_share(daemon_factory, mode, reuse_port):
    flags = ["--reuse-port"] if reuse_port else []
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--loops", "3", "--mode", mode, "--log-level", "notice", *flags)
    address = tcp_address(daemon.urls[0])
    # 20 clients at once, 15 connections each: with one shared queue, whichever loop wakes first takes the
    # next connection, so sequential clients could all go to the loop that just finished (nothing promises
    # otherwise); with clients at once, a loop busy with one leaves the next to the others.
    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        for done in [pool.submit(lambda: [echo_once(address) for _ in range(15)]) for _ in range(20)]:
            done.result()
    assert daemon.stop() == 0
    match = re.search(r"per-loop=(\d+) (\d+) (\d+) \[evserved\] served per loop", daemon.stderr_text())
    assert match, daemon.stderr_text()
    counts = [int(n) for n in match.groups()]
    assert sum(counts) == 300
    if reuse_port:
        # The kernel hashes each connection to a socket: 300 spread over 3 is never this lopsided by chance.
        assert min(counts) >= 50, counts
    else:
        # One shared queue under concurrent clients: every loop takes part.
        assert min(counts) >= 10, counts


def test_each_loop_is_a_thread(daemon_factory):
    one = daemon_factory("--listen", "tcp://127.0.0.1:0", "--loops", "1")
    four = daemon_factory("--listen", "tcp://127.0.0.1:0", "--loops", "4")
    assert process_figures(four.process.pid)[0] - process_figures(one.process.pid)[0] == 3


@pytest.mark.parametrize("reuse_port", [False, True])
def test_udp_datagrams_are_served_by_every_loop_socket(daemon_factory, reuse_port):
    """With --reuse-port each loop has a socket and the kernel picks one per sender; without it a UDP listener
    has one loop (loops sharing one datagram socket would all wake for every datagram)."""
    flags = ["--reuse-port"] if reuse_port else []
    daemon = daemon_factory("--listen", "udp://127.0.0.1:0", "--loops", "2", "--log-level", "notice", *flags)
    for index in range(100):  # each client socket is one sender
        client = DatagramClient(daemon.urls[0])
        try:
            assert client.ask(b"%d" % index) == b"%d" % index
        finally:
            client.close()
    assert daemon.stop() == 0
    text = daemon.stderr_text()
    if reuse_port:
        match = re.search(r"per-loop=(\d+) (\d+) \[evserved\] served per loop", text)
        assert match, text
        counts = [int(n) for n in match.groups()]
        assert sum(counts) == 100 and min(counts) >= 15, counts
    else:
        assert "loops=1" in text and "served per loop" not in text, text


def test_unix_listeners_have_one_loop(daemon_factory):
    path = f"/tmp/evs-loops-{time.monotonic_ns()}.sock"
    daemon = daemon_factory("--listen", f"unix://{path}", "--loops", "4")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(b"unix\n")
        assert recv_until(sock, lambda d: d.endswith(b"\n")) == b"unix\n"
    assert daemon.stop() == 0
    assert "served per loop" not in daemon.stderr_text()


def test_max_connections_holds_for_all_loops_together(daemon_factory):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--loops", "4", "--max-connections", "2")
    address = tcp_address(daemon.urls[0])
    held = [socket.create_connection(address, timeout=10) for _ in range(2)]
    for index, sock in enumerate(held):
        sock.sendall(b"%d\n" % index)
        assert recv_until(sock, lambda d: d.endswith(b"\n")) == b"%d\n" % index
    waiting = []
    for index in range(6):  # whichever loop the kernel picks, none may accept while two are open
        sock = socket.create_connection(address, timeout=10)
        sock.sendall(b"w%d\n" % index)
        waiting.append(sock)
    for sock in waiting:
        sock.settimeout(0.2)
        with pytest.raises(socket.timeout):
            sock.recv(10)
    for sock in held:
        sock.close()
    # As slots free, every loop accepts again and nobody is lost. Which waiting client a loop takes next
    # is the kernel's choice (each sits in one loop's backlog), so answer them in whatever order they come.
    expected = {sock: b"w%d\n" % index for index, sock in enumerate(waiting)}
    deadline = time.monotonic() + 20
    while expected and time.monotonic() < deadline:
        ready, _, _ = select.select(list(expected), [], [], 1)
        for sock in ready:
            sock.settimeout(10)
            assert recv_until(sock, lambda d: d.endswith(b"\n")) == expected.pop(sock)
            sock.close()
    assert not expected, f"{len(expected)} waiting clients never served"


def test_bad_loops_is_refused():
    status, stderr = run_evserved("--listen", "tcp://127.0.0.1:0", "--loops", "0")
    assert status == 1 and "invalid --loops '0': out of range" in stderr, stderr
