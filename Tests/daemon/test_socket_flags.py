"""Socket flags and lifetime: Flags whose effect only shows from outside: --max-lifetime, --backlog, --reuse-port, --no-reuse-address.
Each test checks the effect itself (a closed connection, the kernel's listen queue, a bind that succeeds or
fails), not that the flag parses."""
import socket
import subprocess
import time

import pytest

from conftest import TIMEOUT, connect_url, recv_until, run_evserved, tcp_address


@pytest.mark.parametrize("mode", ["event", "thread"])
def test_max_lifetime_closes_a_client_that_keeps_trickling(daemon_factory, mode):
    # The read timeout alone would never fire: a byte comes every 0.1 s. Only the lifetime ends it.
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--mode", mode, "--read-timeout", "5",
                            "--max-lifetime", "0.6")
    with connect_url(daemon.urls[0]) as sock:
        sock.settimeout(0.1)
        started = time.monotonic()
        ended = None
        while time.monotonic() - started < 5:
            try:
                sock.sendall(b"x")
                if sock.recv(100) == b"":
                    ended = "closed"
            except socket.timeout:
                continue
            except (BrokenPipeError, ConnectionResetError):
                ended = "reset"
            if ended:
                break
        lasted = time.monotonic() - started
    assert ended, "still open after 5 s although the lifetime is 0.6 s"
    assert 0.5 <= lasted < 4, f"closed after {lasted:.2f} s"


def listen_queue_limit(port):
    """The listen queue limit of the TCP listener on `port`, as the kernel reports it (ss's Send-Q)."""
    output = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
    lines = output.splitlines()
    assert len(lines) == 1, output
    return int(lines[0].split()[2])


def test_backlog_sets_the_kernels_listen_queue(daemon_factory):
    default = daemon_factory("--listen", "tcp://127.0.0.1:0", "--loops", "1")
    chosen = daemon_factory("--listen", "tcp://127.0.0.1:0", "--loops", "1", "--backlog", "7")
    with open("/proc/sys/net/core/somaxconn") as somaxconn:
        limit = int(somaxconn.read())
    assert listen_queue_limit(tcp_address(chosen.urls[0])[1]) == 7
    assert listen_queue_limit(tcp_address(default.urls[0])[1]) == min(limit, socket.SOMAXCONN)


def binds_with_reuse_port(port):
    probe = socket.socket()
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        probe.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        probe.close()


@pytest.mark.parametrize("reuse_port", [False, True])
def test_reuse_port_lets_another_socket_share_the_port_only_when_asked(daemon_factory, reuse_port):
    # One loop: no listener of the daemon's own needs to share the port.
    flags = ["--reuse-port"] if reuse_port else []
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--loops", "1", *flags)
    assert binds_with_reuse_port(tcp_address(daemon.urls[0])[1]) == reuse_port


def port_with_a_time_wait_connection():
    """A port with no listener but a connection in TIME_WAIT on it (its server side closed first): binding it
    needs SO_REUSEADDR (Linux lets a socket bind over TIME_WAIT only when both set it: this side does, as a
    restarted server's old connections would)."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    server_side, _ = listener.accept()
    listener.close()
    server_side.close()  # the server side closes first: its end goes to TIME_WAIT
    assert client.recv(1) == b""
    client.close()
    return port


def test_no_reuse_address_cannot_bind_over_a_lingering_connection(daemon_factory):
    port = port_with_a_time_wait_connection()
    status, stderr = run_evserved("--listen", f"tcp://127.0.0.1:{port}", "--loops", "1", "--no-reuse-address")
    assert status != 0 and "address in use" in stderr, stderr
    # By default SO_REUSEADDR is set: the same port binds at once.
    daemon = daemon_factory("--listen", f"tcp://127.0.0.1:{port}", "--loops", "1")
    with connect_url(daemon.urls[0]) as sock:
        sock.sendall(b"ok\n")
        assert recv_until(sock, lambda d: d.endswith(b"\n")) == b"ok\n"
