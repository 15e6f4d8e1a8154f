"""What an attack on the daemon broke (issue 12): a port others could join, a file that was not ours deleted,
a crash when the system refuses a thread."""
import os
import socket
import stat
import time

import pytest

from conftest import wait_for, BINARY, DatagramClient, recv_until, run_evserved, short_unix_path

NOBODY = 65534


def thread_starved_prefix():
    """A command prefix under which the daemon can start only a few threads.

    As root (CI): the daemon runs as user nobody with RLIMIT_NPROC 40 (what `ulimit -u` or a unit's
    TasksMax gives an operator): `pthread_create` fails with EAGAIN and nothing else runs short. Otherwise
    (or when nobody cannot run the binary): an address-space limit that a few dozen 8 MiB thread stacks
    exhaust; then any other allocation may fail at the same moment, and Swift stops the process on a failed
    allocation, so under heavy load that form could crash in the allocator instead of testing the refusal
    (seen with two busy loops beside the test: 4 runs of 6). MALLOC_ARENA_MAX=1 there: without it glibc
    reserves 64 MiB of address space per thread arena."""
    import subprocess
    as_nobody = ("setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups")
    if os.geteuid() == 0 and subprocess.run([*as_nobody, "test", "-x", BINARY]).returncode == 0:
        return ("prlimit", "--nproc=40", "--", *as_nobody)
    return ("prlimit", "--as=1000000000", "--", "env", "MALLOC_ARENA_MAX=1")


THREAD_STARVED = thread_starved_prefix()


def port_of(url):
    return int(url.rsplit(":", 1)[1])


def echo(address, payload=b"ping\n"):
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(payload)
        return recv_until(sock, lambda d: d.endswith(b"\n"))



@pytest.mark.parametrize("scheme", ["tcp", "udp"])
def test_a_second_daemon_cannot_join_the_port_without_reuse_port(daemon_factory, scheme):
    first = daemon_factory("--listen", f"{scheme}://127.0.0.1:0", "--loops", "2")
    port = port_of(first.urls[0])
    status, stderr = run_evserved("--listen", f"{scheme}://127.0.0.1:{port}", "--loops", "2")
    assert status == 1, stderr
    assert "address in use" in stderr, stderr
    assert first.stop() == 0


@pytest.mark.parametrize("scheme", ["tcp", "udp"])
def test_with_reuse_port_on_both_a_second_daemon_may_share_the_port(daemon_factory, scheme):
    first = daemon_factory("--listen", f"{scheme}://127.0.0.1:0", "--loops", "2", "--reuse-port")
    port = port_of(first.urls[0])
    second = daemon_factory("--listen", f"{scheme}://127.0.0.1:{port}", "--loops", "2", "--reuse-port")
    assert port_of(second.urls[0]) == port
    assert second.stop() == 0 and first.stop() == 0


def test_a_file_put_at_the_socket_path_while_serving_is_left_alone(daemon_factory):
    path = short_unix_path("mine")
    daemon = daemon_factory("--listen", f"unix://{path}")
    os.unlink(path)
    with open(path, "w") as replacement:
        replacement.write("not a socket\n")
    assert daemon.stop() == 0
    assert stat.S_ISREG(os.lstat(path).st_mode), "the daemon deleted a file that was not its socket"


def test_stopping_a_daemon_keeps_the_live_socket_another_daemon_bound_at_its_path(daemon_factory):
    path = short_unix_path("shared")
    first = daemon_factory("--listen", f"unix://{path}")
    os.unlink(path)  # an operator removes it; a second daemon takes the path
    second = daemon_factory("--listen", f"unix://{path}")
    assert first.stop() == 0
    assert stat.S_ISSOCK(os.lstat(path).st_mode), "the first daemon deleted the second daemon's socket"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(10)
        client.connect(path)
        client.sendall(b"still here\n")
        assert recv_until(client, lambda d: d.endswith(b"\n")) == b"still here\n"
    assert second.stop() == 0
    assert not os.path.exists(path), "the second daemon left its own socket file"


def test_pool_threads_the_system_refuses_are_a_clear_error_at_start():
    import subprocess
    result = subprocess.run([*THREAD_STARVED, BINARY, "--listen", "tcp://127.0.0.1:0", "--mode", "pool",
                             "--threads", "500"], capture_output=True, timeout=30)
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert "cannot start 500 pool threads" in stderr and "ulimit" in stderr, stderr
    assert "Fatal error" not in stderr


def test_thread_mode_refuses_what_it_cannot_start_a_thread_for_and_recovers(daemon_factory):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--mode", "thread", "--log-level", "notice",
                            prefix=THREAD_STARVED)
    host, port = daemon.urls[0][len("tcp://"):].rsplit(":", 1)
    address = (host, int(port))
    idle = []
    try:
        for _ in range(120):  # more than the memory limit leaves threads for
            idle.append(socket.create_connection(address, timeout=10))
        assert wait_for(lambda: "cannot start a thread" in daemon.stderr_text(), timeout=30), "the refusal to be logged"
        assert daemon.process.poll() is None, daemon.stderr_text()
        assert daemon.stderr_text().count("cannot start a thread") == 1, "logged once per burst"
    finally:
        for sock in idle:
            sock.close()
    # Once the idle clients are gone their threads end, and a new client is served again.
    deadline = time.monotonic() + 20
    while True:
        try:
            assert echo(address) == b"ping\n"
            break
        except (ConnectionError, socket.timeout, AssertionError):
            if time.monotonic() > deadline:
                text = daemon.stderr_text()
                raise AssertionError("thread mode did not recover: " + text[:3000] + "\n...\n" + text[-1500:])
            time.sleep(0.1)
    assert daemon.stop() == 0
    assert "Fatal error" not in daemon.stderr_text()


def test_a_full_pool_says_so_once_per_burst_and_serves_again(daemon_factory):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--mode", "pool", "--threads", "1", "--queue", "0",
                            "--log-level", "notice")
    host, port = daemon.urls[0][len("tcp://"):].rsplit(":", 1)
    address = (host, int(port))
    idle = [socket.create_connection(address, timeout=10) for _ in range(3)]
    try:
        assert wait_for(lambda: "every pool worker is busy" in daemon.stderr_text()), "the full pool to be logged"
        assert "--threads" in daemon.stderr_text() and "--idle-timeout" in daemon.stderr_text()
    finally:
        for sock in idle:
            sock.close()
    assert echo(address) == b"ping\n"
    assert daemon.stderr_text().count("every pool worker is busy") == 1, daemon.stderr_text()
    assert daemon.stop() == 0


@pytest.mark.parametrize("scheme", ["tcp", "udp"])
def test_no_process_can_join_the_port_of_worker_processes(daemon_factory, scheme):
    supervisor = daemon_factory("--listen", f"{scheme}://127.0.0.1:0", "--workers", "2")
    port = port_of(supervisor.urls[0])
    for flags in ([], ["--reuse-port"]):
        status, stderr = run_evserved("--listen", f"{scheme}://127.0.0.1:{port}", *flags)
        assert status == 1 and "address in use" in stderr, (flags, stderr)
    if scheme == "tcp":
        assert echo(("127.0.0.1", port)) == b"ping\n"
    else:
        with DatagramClient(supervisor.urls[0]) as client:
            assert client.ask(b"ping") == b"ping"
    assert supervisor.stop() == 0


def server_send_queue(port):
    """Bytes the kernel holds in the server side's send queues of connections from `port` (ss's Send-Q)."""
    import subprocess
    lines = subprocess.run(["ss", "-tnH", "state", "established", f"( sport = :{port} )"], capture_output=True,
                           text=True, check=True).stdout.splitlines()
    return sum(int(line.split()[1]) for line in lines)


@pytest.mark.parametrize("send_buffer", [None, 8192])
def test_send_buffer_bounds_what_the_kernel_holds_for_a_client_that_never_reads(daemon_factory, send_buffer):
    flags = ["--send-buffer", str(send_buffer)] if send_buffer else []
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--service", "chargen", *flags)
    host, port = daemon.urls[0][len("tcp://"):].rsplit(":", 1)
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the client's window takes little
    client.connect((host, int(port)))
    try:
        # chargen writes until the server queues above its high water mark and stops: wait for that.
        last, steady = -1, 0
        deadline = time.monotonic() + 10
        while steady < 10 and time.monotonic() < deadline:
            queued = server_send_queue(int(port))
            steady = steady + 1 if queued == last else 0
            last = queued
            time.sleep(0.02)
        if send_buffer:
            assert last <= 4 * send_buffer, f"the kernel holds {last} bytes for the client"
        else:
            assert last > 4 * 8192, "without --send-buffer the kernel's autotuned buffer holds more"
    finally:
        client.close()
    assert daemon.stop() == 0
