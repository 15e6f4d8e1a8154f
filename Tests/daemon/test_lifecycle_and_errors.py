"""evserved start-up, shutdown and bad input, against the real binary."""
import os
import shutil
import signal
import socket
import time

import pytest

from conftest import BINARY, TIMEOUT, connect_url, recv_until, run_evserved, short_unix_path, wait_for


def echo_once(url, payload=b"ping\n"):
    with connect_url(url) as sock:
        sock.sendall(payload)
        return recv_until(sock, lambda d: len(d) >= len(payload))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_and_removes_unix_socket_file(daemon_factory, sig):
    path = short_unix_path("sig")
    daemon = daemon_factory("--listen", "unix://" + path, "--listen", "tcp://127.0.0.1:0")
    assert daemon.urls[0] == "unix://" + path
    assert echo_once(daemon.urls[0]) == b"ping\n"
    assert os.path.exists(path)
    assert daemon.stop(sig) == 0
    assert not os.path.exists(path)


def test_port_zero_reports_the_real_port(daemon_factory):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--listen", "tcp://[::1]:0")
    v4, v6 = daemon.urls
    assert v4.startswith("tcp://127.0.0.1:") and not v4.endswith(":0")
    assert v6.startswith("tcp://[::1]:") and not v6.endswith(":0")
    assert echo_once(v4) == b"ping\n" and echo_once(v6) == b"ping\n"


def test_listeners_get_their_own_service_and_mode(daemon_factory):
    daemon = daemon_factory(
        "--listen", "tcp://127.0.0.1:0?service=echo",
        "--listen", "tcp://127.0.0.1:0?service=daytime&mode=thread",
        "--listen", "tcp://127.0.0.1:0?mode=pool&service=upper",
    )
    assert echo_once(daemon.urls[0]) == b"ping\n"
    with connect_url(daemon.urls[1]) as sock:
        assert recv_until(sock, lambda _: False).endswith(b"\r\n")
    assert echo_once(daemon.urls[2], b"abc\n") == b"ABC\n"


def blocks_stop_signals(pid):
    """Whether evserved has taken SIGTERM and SIGINT over: it blocks them first thing (its threads inherit the
    mask) and takes them with sigwait, during which the kernel shows the waiting thread's mask without them,
    so any of its threads blocking both will do."""
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/status") as status:
                for line in status:
                    if line.startswith("SigBlk:"):
                        mask = int(line.split()[1], 16)
                        if all(mask & (1 << (sig - 1)) for sig in (signal.SIGTERM, signal.SIGINT)):
                            return True
    except OSError:
        pass
    return False


def test_twenty_rapid_start_stop_cycles_never_hang():
    import subprocess
    for cycle in range(20):
        process = subprocess.Popen([BINARY, "--listen", "tcp://127.0.0.1:0"], stdout=subprocess.PIPE)
        try:
            if cycle % 2:
                process.stdout.readline()  # half of them are stopped only once listening
            else:
                # the other half while starting up, as soon as the daemon owns the signal (before that, the
                # kernel's default action kills the process: not the daemon's to handle)
                assert wait_for(lambda: blocks_stop_signals(process.pid), interval=0.001), "signals never taken over"
            process.send_signal(signal.SIGTERM)
            assert process.wait(TIMEOUT) == 0, f"cycle {cycle}"
        finally:
            if process.poll() is None:
                process.kill()
            process.stdout.close()


@pytest.mark.parametrize("mode", ["event", "sync", "thread", "pool", "async"])
def test_idle_timeout_closes_a_silent_client(daemon_factory, mode):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--mode", mode, "--idle-timeout", "0.3")
    with connect_url(daemon.urls[0]) as sock:
        started = time.monotonic()
        assert sock.recv(10) == b""
        assert time.monotonic() - started < TIMEOUT
    assert echo_once(daemon.urls[0]) == b"ping\n"


def test_stale_unix_socket_file_is_replaced_but_a_live_one_is_refused(daemon_factory):
    path = short_unix_path("stale")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()  # the file stays, nobody listens: what a crashed server leaves
    daemon = daemon_factory("--listen", "unix://" + path)
    assert echo_once(daemon.urls[0]) == b"ping\n"
    status, stderr = run_evserved("--listen", "unix://" + path)
    assert status != 0
    assert "another server is listening" in stderr
    assert echo_once(daemon.urls[0]) == b"ping\n"  # the first daemon's file was left alone


def test_a_regular_file_in_the_way_is_never_removed():
    path = short_unix_path("file")
    with open(path, "w") as handle:
        handle.write("precious")
    status, stderr = run_evserved("--listen", "unix://" + path)
    assert status != 0 and "not a socket" in stderr
    assert open(path).read() == "precious"


# --- bad input: a clear message naming the problem, and a non-zero exit -----------------------------

@pytest.mark.parametrize(
    "args, expected",
    [
        (["--listen", "tcp://127.0.0.1:0", "--frobnicate"], "--frobnicate"),
        (["--listen", "tcp://127.0.0.1:0", "--service", "finger"], "finger"),
        (["--listen", "tcp://127.0.0.1:0?service=finger"], "unknown service 'finger'"),
        (["--listen", "tcp://127.0.0.1:0?mode=fork"], "unknown mode 'fork'"),
        (["--listen", "tcp://127.0.0.1:0?colour=red"], "unknown parameter 'colour'"),
        (["--listen", "tcp://127.0.0.1:0", "--mode", "fork"], "fork"),
        (["--listen", "tcp://nonsense:80"], "'nonsense' is not a numeric IPv4 or IPv6 address"),
        (["--listen", "tcp://127.0.0.1"], "expected HOST:PORT"),
        (["--listen", "tcp://::1:80"], "brackets"),
        (["--listen", "http://127.0.0.1:80"], "unknown scheme"),
        (["--listen", "tcp://127.0.0.1:70000"], "port 70000 is out of range"),
        (["--listen", "tcp://127.0.0.1:-1"], "out of range"),
        (["--listen", "tcp://127.0.0.1:http"], "is not a number"),
        (["--listen", "unix://relative.sock"], "three slashes"),
        (["--listen", "unix:///tmp/" + "x" * 120], "longer than the 107"),
        ([], "at least one --listen"),
        (["--listen", "tcp://127.0.0.1:0", "--threads", "0"], "invalid --threads '0': out of range"),
        (["--listen", "tcp://127.0.0.1:0", "--queue=-1"], "invalid --queue '-1': out of range"),
        (["--listen", "tcp://127.0.0.1:0", "--backlog=-1"], "invalid --backlog '-1': out of range"),
        (["--listen", "tcp://127.0.0.1:0", "--idle-timeout", "0"], "invalid --idle-timeout '0': out of range"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(args, expected):
    status, stderr = run_evserved(*args)
    # The README's rule: an unknown flag is a usage error (64); every bad value exits with status 1.
    assert status == (64 if "--frobnicate" in args else 1), stderr
    assert len(stderr.splitlines()) == 1, stderr
    assert expected in stderr, stderr


def test_address_in_use():
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        status, stderr = run_evserved("--listen", f"tcp://127.0.0.1:{port}")
        assert status != 0
        assert f"cannot listen on 127.0.0.1:{port}: address in use" in stderr
    finally:
        holder.close()


def test_address_not_on_this_machine():
    status, stderr = run_evserved("--listen", "tcp://192.0.2.1:7000")  # TEST-NET-1: bound, never contacted
    assert status != 0 and "address not available" in stderr


def test_permission_denied_on_a_privileged_port():
    args = ["--listen", "tcp://127.0.0.1:1"]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: cannot drop privileges to provoke EACCES")
        import subprocess
        result = subprocess.run(
            [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", BINARY, *args],
            capture_output=True, timeout=TIMEOUT,
        )
        status, stderr = result.returncode, result.stderr.decode()
    else:
        status, stderr = run_evserved(*args)
    assert status != 0
    assert "permission denied" in stderr, stderr


def test_a_failed_listener_closes_the_ones_already_opened():
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    path = short_unix_path("first")
    try:
        status, _ = run_evserved("--listen", "unix://" + path, "--listen", f"tcp://127.0.0.1:{port}")
        assert status != 0
        assert not os.path.exists(path)
    finally:
        holder.close()


def test_help_lists_the_flags():
    import subprocess
    result = subprocess.run([BINARY, "--help"], capture_output=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    out = result.stdout.decode()
    for flag in ["--listen", "--service", "--mode", "--threads", "--queue", "--idle-timeout", "--backlog",
                 "--reuse-port", "--no-reuse-address", "--log-level", "--max-lifetime", "--workers"]:
        assert flag in out
