"""Hostile and broken clients, limits, descriptor exhaustion and graceful drain, against the real daemon.
Each case ends by checking that a fresh client is still served."""
import os
import resource
import signal
import socket
import struct
import subprocess
import tempfile
import time

import pytest

from conftest import (BINARY, TIMEOUT, Daemon, DatagramClient, connect_url, recv_all, recv_until, recv_until_closed,
                      run_evserved, wait_for)


def assert_still_serving(url, payload=b"fresh\n"):
    with connect_url(url) as sock:
        sock.sendall(payload)
        assert recv_until(sock, lambda d: len(d) >= len(payload)).upper() == payload.upper()


def open_descriptors(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.parametrize("mode", ["event", "thread", "async"])
def test_a_line_without_end_gets_an_error_line_and_memory_stays_bounded(daemon_factory, mode):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0?service=upper", "--mode", mode, "--max-line", "4096")
    with connect_url(daemon.urls[0]) as sock:
        sent = 0
        chunk = b"a" * 65536
        try:
            while sent < 1 << 30:  # up to a gigabyte; the server closes long before
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        # The error line was sent before the close: it is read even when a reset follows (the client's
        # unread bytes make the server's close a reset); a read timeout raises.
        reply, _ = recv_until_closed(sock)
    assert sent < 1 << 30, "the server must stop the client long before a gigabyte"
    assert reply.endswith(b"ERROR line longer than 4096 bytes\r\n"), reply[-80:]
    assert_still_serving(daemon.urls[0], b"still here\n")


def test_the_error_line_arrives_when_the_client_waits_for_it(daemon_factory):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0?service=upper", "--max-line", "100")
    with connect_url(daemon.urls[0]) as sock:
        sock.sendall(b"ok\n" + b"b" * 101)
        reply = recv_all(sock)
    assert reply.startswith(b"OK\n") and reply.endswith(b"ERROR line longer than 100 bytes\r\n")


def test_binary_garbage_and_nul_bytes_pass_through_upper(daemon_factory):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0?service=upper")
    payload = bytes(range(256)) + b"\n"
    with connect_url(daemon.urls[0]) as sock:
        sock.sendall(payload)
        reply = recv_until(sock, lambda d: len(d) >= len(payload))
    assert reply == bytes(b - 32 if 97 <= b <= 122 else b for b in payload)


@pytest.mark.parametrize("mode", ["event", "pool", "async"])
def test_reset_in_the_middle_of_a_reply_harms_no_one(daemon_factory, mode):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0?service=chargen", "--listen", "tcp://127.0.0.1:0",
                            "--mode", mode)
    pid = daemon.process.pid
    baseline = open_descriptors(pid)
    for _ in range(50):
        sock = connect_url(daemon.urls[0])
        sock.recv(1000)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # RST while the server is writing
    assert_still_serving(daemon.urls[1])
    deadline = time.monotonic() + 5
    while open_descriptors(pid) > baseline and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_descriptors(pid) <= baseline


@pytest.mark.parametrize("mode", ["event", "thread", "pool", "async"])
def test_a_connect_and_close_flood_leaves_descriptors_and_threads_at_baseline(daemon_factory, mode):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--mode", mode)
    pid = daemon.process.pid
    assert_still_serving(daemon.urls[0])
    baseline = open_descriptors(pid)
    host, port = daemon.urls[0][len("tcp://"):].rsplit(":", 1)
    for _ in range(3000):
        sock = socket.socket()
        sock.connect((host, int(port)))
        sock.close()
    assert_still_serving(daemon.urls[0])
    deadline = time.monotonic() + 5
    while open_descriptors(pid) > baseline and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_descriptors(pid) <= baseline


def test_out_of_descriptors_logs_once_and_recovers():
    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40))
    # One loop: each loop warns once per burst, and this counts the warnings.
    stderr = tempfile.TemporaryFile()
    process = subprocess.Popen([BINARY, "--listen", "tcp://127.0.0.1:0", "--loops", "1"], stdout=subprocess.PIPE,
                               stderr=stderr, preexec_fn=low_limit)

    def log():
        stderr.seek(0)
        return stderr.read().decode(errors="replace")
    try:
        url = process.stdout.readline().decode().split()[1]
        host, port = url[len("tcp://"):].rsplit(":", 1)
        clients = []
        for _ in range(60):  # more than the daemon can hold: the rest wait in the backlog
            sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)
            clients.append(sock)
        assert wait_for(lambda: "cannot accept: out of descriptors" in log()), "no warning: " + log()
        # Hold the shortage for two back-off periods (a second each), so the retries below are more than one.
        time.sleep(2.2)
        for sock in clients:
            sock.close()
        assert wait_for(lambda: "accepting again" in log()), "accepting never resumed: " + log()
        assert_still_serving(url)
        process.send_signal(signal.SIGTERM)
        assert process.wait(TIMEOUT) == 0
        text = log()
        assert text.count("cannot accept: out of descriptors") == 1, text
        import re
        pauses = [int(n) for n in re.findall(r"pauses=(\d+)", text)]
        assert pauses and 2 <= max(pauses) <= 10, f"accept must retry about once a second, not spin: {pauses}"
    finally:
        if process.poll() is None:
            process.kill()


def test_max_connections_holds_the_rest_in_the_backlog(daemon_factory):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--max-connections", "1")
    first = connect_url(daemon.urls[0])
    first.sendall(b"1\n")
    assert recv_until(first, lambda d: d.endswith(b"\n")) == b"1\n"
    second = connect_url(daemon.urls[0])
    second.sendall(b"2\n")
    second.settimeout(0.3)
    with pytest.raises(socket.timeout):
        second.recv(10)
    first.close()
    second.settimeout(TIMEOUT)
    assert recv_until(second, lambda d: d.endswith(b"\n")) == b"2\n"
    second.close()


def test_one_address_over_its_connection_rate_is_closed_and_served_again_later(daemon_factory):
    # One loop: with several, the rate is split among them and which loop a connection lands on is the
    # kernel's hash, so the exact sequence below would not hold.
    # 0.5 a second: a bucket of one token, the next one two seconds later. Three attempts take milliseconds.
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--max-connection-rate-per-client", "0.5", "--loops", "1")
    def answered():
        try:
            with daemon.connect() as sock:
                sock.sendall(b"x\n")
                return sock.recv(16) == b"x\n"
        except OSError:
            return False
    start = time.monotonic()
    assert [answered() for _ in range(3)] == [True, False, False]
    assert wait_for(answered, timeout=6, interval=0.05), "served again once its next token is due"
    assert time.monotonic() - start >= 1.5, "not before the next token"


def test_deny_refuses_tcp_and_udp_clients(daemon_factory):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--listen", "udp://127.0.0.1:0",
                            "--deny", "127.0.0.0/8")
    with connect_url(daemon.urls[0]) as sock:
        sock.sendall(b"hi\n")
        # Closed unread: a reset (its "hi" was never read) or an orderly end, never a reply (a timeout raises).
        assert recv_until_closed(sock)[0] == b""
    with DatagramClient(daemon.urls[1]) as client:
        client.send(b"hi")
        assert client.receives_nothing(within=0.3)


def test_allow_serves_only_the_listed_range(daemon_factory):
    daemon = daemon_factory("--listen", "tcp://[::]:0", "--allow", "::1/128")
    port = int(daemon.urls[0].rsplit(":", 1)[1])
    assert_still_serving(f"tcp://[::1]:{port}")
    with connect_url(f"tcp://127.0.0.1:{port}") as sock:
        sock.sendall(b"hi\n")
        assert recv_until_closed(sock)[0] == b"", "refused: closed without a reply (a timeout raises)"


def test_write_timeout_closes_a_client_that_never_reads(daemon_factory):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--write-timeout", "0.5", "--send-buffer", "4096")
    sock = connect_url(daemon.urls[0], receive_buffer=4096)
    sock.settimeout(0.2)
    start = time.monotonic()
    closed = False
    while time.monotonic() - start < 10:
        try:
            sock.sendall(b"x" * 65536)
        except socket.timeout:
            continue
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
    assert closed, "the daemon closes a client that takes none of its replies"
    sock.close()
    assert_still_serving(daemon.urls[0])


@pytest.mark.parametrize("mode", ["event", "thread", "async"])
def test_sigterm_drains_open_connections_then_exits(daemon_factory, mode):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--drain-timeout", "1", "--mode", mode)
    sock = connect_url(daemon.urls[0])
    sock.sendall(b"before\n")
    assert recv_until(sock, lambda d: d.endswith(b"\n")) == b"before\n"
    started = time.monotonic()
    daemon.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            connect_url(daemon.urls[0]).close()
            time.sleep(0.02)
        except ConnectionRefusedError:
            break
    else:
        pytest.fail("the listener is still open after SIGTERM")
    sock.sendall(b"during\n")
    assert recv_until(sock, lambda d: d.endswith(b"\n")) == b"during\n", "open connections are served while draining"
    assert recv_all(sock) == b"", "closed at the drain deadline"
    assert daemon.process.wait(TIMEOUT) == 0
    assert time.monotonic() - started >= 0.9


def test_a_client_in_the_backlog_when_sigterm_came_is_answered(daemon_factory):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--max-connections", "1", "--drain-timeout", "2")
    first = connect_url(daemon.urls[0])
    first.sendall(b"1\n")
    assert recv_until(first, lambda d: d.endswith(b"\n")) == b"1\n"
    waiting = connect_url(daemon.urls[0])  # completed by the kernel, not accepted: at the limit
    waiting.sendall(b"in the backlog\n")
    daemon.process.send_signal(signal.SIGTERM)
    assert recv_until(waiting, lambda d: d.endswith(b"\n")) == b"in the backlog\n"
    assert daemon.process.wait(TIMEOUT) == 0
    first.close()
    waiting.close()


def test_a_second_signal_exits_at_once(daemon_factory):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--drain-timeout", "60")
    sock = connect_url(daemon.urls[0])
    sock.sendall(b"x\n")
    recv_until(sock, lambda d: d.endswith(b"\n"))
    daemon.process.send_signal(signal.SIGTERM)
    assert wait_for(lambda: "shutting down" in daemon.stderr_text()), "the first signal was taken"
    started = time.monotonic()
    daemon.process.send_signal(signal.SIGINT)
    assert daemon.process.wait(TIMEOUT) == 1
    assert time.monotonic() - started < 5
    assert "second signal" in daemon.stderr_text()
    sock.close()


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--deny", "10.0.0.0/33"], "invalid --deny '10.0.0.0/33': the prefix length must be a number from 0 to 32"),
        (["--allow", "example.com/8"], "is not an address range"),
        (["--max-connections", "0"], "invalid --max-connections '0': out of range: use 1 or more"),
        (["--max-line", "0"], "invalid --max-line '0': out of range"),
        (["--read-timeout", "0"], "invalid --read-timeout '0': out of range"),
        (["--max-connection-rate=-5"], "invalid --max-connection-rate '-5': out of range"),
        (["--max-connection-rate-per-client", "0"], "invalid --max-connection-rate-per-client '0': out of range"),
        (["--drain-timeout=-1"], "invalid --drain-timeout '-1': out of range: use 0 to"),
    ],
)
def test_bad_limit_flags_are_refused(args, expected):
    status, stderr = run_evserved("--listen", "tcp://127.0.0.1:0", *args)
    assert status == 1 and len(stderr.splitlines()) == 1, stderr
    assert expected in stderr, stderr
