"""--workers N: N supervised processes on shared SO_REUSEPORT listeners (socketserver's ForkingMixIn,
pre-forked): all serve, a dead one is replaced, SIGTERM drains every one, a second signal ends them at once."""
import os
import signal
import socket
import time

from conftest import DatagramClient, TIMEOUT, recv_until, run_evserved, tcp_address, wait_for


def children(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as listing:
        return sorted(int(child) for child in listing.read().split())


def echo(address, payload=b"x\n"):
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(payload)
        return recv_until(sock, lambda d: len(d) >= len(payload))


def established_server_inodes(port):
    """Socket inodes of the established TCP connections whose local port is `port` (the server's side)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] == "01":  # 01: ESTABLISHED
                    inodes.add(int(fields[9]))
    return inodes


def socket_inodes(pid):
    """Inodes of the sockets process `pid` holds open."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:["):-1]))
    return inodes


def listener_closed(address):
    try:
        socket.create_connection(address, timeout=1).close()
        return False
    except ConnectionRefusedError:
        return True


def test_workers_serve_tcp_and_udp_and_are_processes(daemon_factory):
    daemon = daemon_factory("--workers", "3", "--loops", "1", "--listen", "tcp://127.0.0.1:0",
                            "--listen", "udp://127.0.0.1:0?service=upper")
    workers = children(daemon.process.pid)
    assert len(workers) == 3
    address = tcp_address(daemon.urls[0])
    # 60 connections held open at once; the kernel spreads them over the workers' SO_REUSEPORT sockets by
    # hash (that a worker gets none of 60 has odds of 3 x (2/3)^60, about 1e-10).
    held = []
    for index in range(60):
        sock = socket.create_connection(address, timeout=TIMEOUT)
        sock.sendall(b"%d\n" % index)
        assert recv_until(sock, lambda d: d.endswith(b"\n")) == b"%d\n" % index
        held.append(sock)
    # Which worker serves each: the process holding the server side of the connection.
    connections = established_server_inodes(address[1])
    assert len(connections) == 60
    shares = {pid: len(socket_inodes(pid) & connections) for pid in workers}
    assert sum(shares.values()) == 60, shares
    assert all(shares.values()), f"every worker serves some connections: {shares}"
    for sock in held:
        sock.close()
    client = DatagramClient(daemon.urls[1])
    try:
        assert client.ask(b"shout") == b"SHOUT"
    finally:
        client.close()
    assert daemon.stop() == 0
    assert daemon.stderr_text().count("[evserved] started") == 3


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
    assert wait_for(lambda: listener_closed(address)), "every worker closed its listener"
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
    assert wait_for(lambda: "stopping: every worker drains" in daemon.stderr_text()), "the first signal was taken"
    assert wait_for(lambda: listener_closed(tcp_address(daemon.urls[0]))), "the workers are draining"
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


def test_a_worker_killed_again_and_again_is_always_restarted_and_the_others_serve_meanwhile(daemon_factory):
    """Issue 14: a slot whose worker keeps dying is restarted with a capped back-off, forever; it used to be
    left empty after a few quick deaths while the daemon looked healthy."""
    daemon = daemon_factory("--workers", "2", "--listen", "tcp://127.0.0.1:0")
    address = tcp_address(daemon.urls[0])
    killed = 0
    deadline = time.monotonic() + 25  # the back-off grows to 4 s between tries
    while killed < 4 and time.monotonic() < deadline:  # one slot's worker, each time it comes back
        workers = children(daemon.process.pid)
        if len(workers) == 2:
            os.kill(max(workers), signal.SIGKILL)  # the newest: the slot that keeps dying
            killed += 1
            assert echo(address) == b"x\n", "the other worker serves meanwhile"
            assert wait_for(lambda: max(children(daemon.process.pid), default=0) != max(workers))
        time.sleep(0.02)
    assert killed == 4
    assert wait_for(lambda: len(children(daemon.process.pid)) == 2, timeout=15), "both slots are filled again"
    for _ in range(20):
        assert echo(address) == b"x\n"
    text = daemon.stderr_text()  # killed at work, or while it was still starting
    assert text.count("worker died; starting another") + text.count("did not start") >= 4, text
    assert daemon.stop() == 0


def test_workers_end_with_their_supervisor_even_when_it_is_killed(daemon_factory):
    """Issue 14: a supervisor killed by SIGKILL used to leave its workers serving, orphaned."""
    daemon = daemon_factory("--workers", "2", "--listen", "tcp://127.0.0.1:0")
    workers = children(daemon.process.pid)
    assert len(workers) == 2
    daemon.process.kill()
    daemon.process.wait(10)
    assert wait_for(lambda: all(not os.path.exists(f"/proc/{pid}") for pid in workers), timeout=15), \
        "the workers drained and ended"
    assert listener_closed(tcp_address(daemon.urls[0]))


def test_a_worker_that_does_not_drain_by_the_deadline_is_killed(daemon_factory):
    daemon = daemon_factory("--workers", "2", "--listen", "tcp://127.0.0.1:0", "--drain-timeout", "0.5")
    assert wait_for(lambda: len(children(daemon.process.pid)) == 2)
    stuck, other = children(daemon.process.pid)
    os.kill(stuck, signal.SIGSTOP)  # it can take no signal and drain nothing
    started = time.monotonic()
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.process.wait(15) == 1, daemon.stderr_text()  # a worker had to be killed: not a clean stop
    assert 5 <= time.monotonic() - started < 12  # the drain timeout and 5 s of allowance
    assert "did not finish its drain in time" in daemon.stderr_text()
    assert not os.path.exists(f"/proc/{stuck}")


def test_a_replaced_worker_that_does_not_drain_is_killed_and_the_new_ones_serve(daemon_factory):
    daemon = daemon_factory("--workers", "1", "--listen", "tcp://127.0.0.1:0", "--drain-timeout", "0.5")
    assert wait_for(lambda: len(children(daemon.process.pid)) == 1)
    [old] = children(daemon.process.pid)
    os.kill(old, signal.SIGSTOP)
    daemon.process.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "reloaded: every worker replaced" in daemon.stderr_text()), daemon.stderr_text()
    assert wait_for(lambda: "did not finish its drain in time" in daemon.stderr_text(), timeout=15)
    assert wait_for(lambda: old not in children(daemon.process.pid))
    assert echo(tcp_address(daemon.urls[0])) == b"x\n"
    assert daemon.stop() == 0
