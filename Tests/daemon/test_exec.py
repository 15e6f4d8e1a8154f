"""--exec / `-- PROGRAM ARGS` (issue 14): a program per connection, as tcpserver runs it (real programs: cat,
env, sh and python3 scripts), and --banner."""
import os
import re
import select
import signal
import socket
import stat
import sys
import time

import pytest

from conftest import Daemon, connect_url, recv_all, run_evserved, short_unix_path, tcp_address, wait_for

PYTHON = sys.executable


def script(tmp_path, name, text):
    """An executable sh script in the test's directory."""
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + text)
    path.chmod(0o755)
    return str(path)


def children(pid):
    """The pids of every child of process `pid` (of any of its threads)."""
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as listing:
                found += [int(child) for child in listing.read().split()]
        except OSError:
            pass
    return found


def state(pid):
    try:
        with open(f"/proc/{pid}/stat") as status:
            return status.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def exchange(sock, payload):
    """Sends `payload`, ends the input, returns everything until the server closes."""
    sock.sendall(payload)
    sock.shutdown(socket.SHUT_WR)
    return recv_all(sock)


def environment_of(sock):
    return dict(line.split("=", 1) for line in recv_all(sock).decode().splitlines() if "=" in line)


def wait_for_log(daemon, pattern):
    assert wait_for(lambda: re.search(pattern, daemon.stderr_text())), f"no {pattern!r} in:\n{daemon.stderr_text()}"
    return re.search(pattern, daemon.stderr_text())


def stop(daemon):
    status = daemon.stop()
    assert status == 0, daemon.stderr_text()


@pytest.mark.parametrize("mode", ["event", "sync", "thread", "pool"])
def test_cat_echoes_through_the_program_in_every_mode(daemon_factory, mode):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--mode", mode, "--log-level", "info", "--", "/bin/cat")
    for round in range(3):
        with daemon.connect() as sock:
            assert exchange(sock, b"hello %d\n" % round) == b"hello %d\n" % round
    assert wait_for(lambda: daemon.stderr_text().count("status=exit 0") == 3), daemon.stderr_text()
    stop(daemon)


@pytest.mark.parametrize("url, proto", [("tcp://127.0.0.1:0", "TCP"), ("tcp://[::1]:0", "TCP6")])
def test_tcp_environment_is_tcpservers(daemon_factory, url, proto):
    daemon = daemon_factory("--listen", url, "--exec", "/usr/bin/env")
    with daemon.connect() as sock:
        client_host, client_port = sock.getsockname()[:2]
        env = environment_of(sock)
    server_host, server_port = tcp_address(daemon.urls[0])
    assert env["PROTO"] == proto
    assert env[proto + "REMOTEIP"] == client_host and env[proto + "REMOTEPORT"] == str(client_port)
    assert env[proto + "LOCALIP"] == server_host and env[proto + "LOCALPORT"] == str(server_port)
    stop(daemon)


def test_an_ipv4_client_of_a_dual_stack_listener_is_tcp(daemon_factory):
    daemon = daemon_factory("--listen", "tcp://[::]:0", "--", "/usr/bin/env")
    _, port = tcp_address(daemon.urls[0])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        env = environment_of(sock)
    assert env["PROTO"] == "TCP" and env["TCPREMOTEIP"] == "127.0.0.1" and env["TCPLOCALPORT"] == str(port)
    stop(daemon)


def test_unix_environment_has_the_clients_credentials(daemon_factory):
    path = short_unix_path("env")
    daemon = daemon_factory("--listen", f"unix://{path}", "--", "/usr/bin/env")
    with daemon.connect() as sock:
        env = environment_of(sock)
    assert env["PROTO"] == "UNIX" and env["UNIXLOCALPATH"] == path
    assert env["UNIXREMOTEPID"] == str(os.getpid())
    assert env["UNIXREMOTEEUID"] == str(os.geteuid()) and env["UNIXREMOTEEGID"] == str(os.getegid())
    stop(daemon)


def test_arguments_reach_the_program_without_a_shell(daemon_factory):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--", "printf", "%s|", "a b", "$HOME", "*")
    with daemon.connect() as sock:
        assert recv_all(sock) == b"a b|$HOME|*|"  # PATH lookup, arguments verbatim
    stop(daemon)


def test_the_program_starts_with_default_signals(daemon_factory):
    # The daemon ignores SIGPIPE and blocks its stop signals in every thread: the program must start clean.
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0",
                            "--", "/bin/grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status")
    with daemon.connect() as sock:
        lines = recv_all(sock).decode().splitlines()
    masks = dict(line.split(":\t") for line in lines)
    assert int(masks["SigBlk"], 16) == 0, lines
    # glibc's posix_spawn leaves its two internal signals (32, 33) ignored in any child: nothing else.
    assert int(masks["SigIgn"], 16) & ~0x180000000 == 0, lines
    stop(daemon)


@pytest.mark.parametrize("workers", [[], ["--workers", "1"]])
def test_the_program_gets_no_other_descriptor(daemon_factory, workers):
    # A careless parent leaves the daemon a descriptor without close-on-exec (7): no program gets it.
    leaky_parent = ("/bin/sh", "-c", 'exec "$@" 7</dev/null', "sh")
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--listen", "tcp://127.0.0.1:0", *workers,
                            "--", "/bin/ls", "/proc/self/fd", prefix=leaky_parent)
    with daemon.connect() as sock:
        assert recv_all(sock).split() == [b"0", b"1", b"2", b"3"]  # 3: the directory ls reads
    stop(daemon)


def test_standard_error_lines_and_exit_status_are_logged_with_the_peer(daemon_factory, tmp_path):
    program = script(tmp_path, "complain", "echo 'first complaint' >&2\nprintf 'no newline' >&2\nexit 3\n")
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--", program)
    with daemon.connect() as sock:
        peer = "%s:%d" % sock.getsockname()[:2]
        assert recv_all(sock) == b""
    exited = wait_for_log(daemon, r".*status=exit 3.*program exited")
    log = daemon.stderr_text()
    for text in ("first complaint", "no newline"):
        line = next(line for line in log.splitlines() if f"program: {text}" in line)
        assert f"connection.peer={peer}" in line and "evserver.listener=127.0.0.1:" in line and "pid=" in line
    assert f"connection.peer={peer}" in exited.group(0)
    assert log.index("first complaint") < log.index("program exited"), "lines before the exit"
    stop(daemon)


def test_max_connections_counts_a_connection_until_its_program_exits(daemon_factory):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--max-connections", "2",
                            "--", "/bin/sh", "-c", "read line; echo done $line")
    first, second = daemon.connect(), daemon.connect()
    assert wait_for(lambda: len(children(daemon.process.pid)) == 2)
    third = daemon.connect()  # waits in the backlog: no program runs for it yet
    third.sendall(b"third\n")
    ready, _, _ = select.select([third], [], [], 0.5)
    assert not ready and len(children(daemon.process.pid)) == 2, "a third program started past the limit"
    assert exchange(second, b"second\n") == b"done second\n"
    assert recv_all(third) == b"done third\n", "the third is served once a program exits"
    assert exchange(first, b"first\n") == b"done first\n"
    for sock in (first, second, third):
        sock.close()
    stop(daemon)


@pytest.mark.parametrize("make, expected", [
    (lambda tmp: "/nonexistent/program", "invalid program '/nonexistent/program': No such file or directory"),
    (lambda tmp: "no-such-program-anywhere", "no executable file of that name in PATH"),
    (lambda tmp: script(tmp, "plain", "exit 0\n") and (os.chmod(tmp / "plain", 0o644) or str(tmp / "plain")),
     "not executable"),
    (lambda tmp: str(tmp), "not a regular file"),
])
def test_a_program_that_cannot_run_is_refused_at_start(tmp_path, make, expected):
    program = make(tmp_path)
    status, stderr = run_evserved("--listen", "tcp://127.0.0.1:0", "--", program)
    assert status == 1 and expected in stderr and len(stderr.strip().splitlines()) == 1, stderr
    status, stderr = run_evserved("--listen", "tcp://127.0.0.1:0", "--exec", program)
    assert status == 1 and "invalid --exec" in stderr, stderr


def test_exec_refuses_async_mode_and_a_program_nothing_would_run(tmp_path):
    status, stderr = run_evserved("--listen", "tcp://127.0.0.1:0", "--mode", "async", "--", "/bin/cat")
    assert status == 1 and "async mode" in stderr, stderr
    status, stderr = run_evserved("--listen", "tcp://127.0.0.1:0?service=echo", "--", "/bin/cat")
    assert status == 1 and "would serve no listener" in stderr, stderr


def test_sigterm_drain_waits_for_a_program_that_finishes(daemon_factory):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--drain-timeout", "30",
                            "--", "/bin/sh", "-c", "read line; echo done $line")
    with daemon.connect() as sock:
        assert wait_for(lambda: len(children(daemon.process.pid)) == 1)
        daemon.process.send_signal(signal.SIGTERM)
        wait_for_log(daemon, "shutting down")
        assert daemon.process.poll() is None, "the drain waits for the running program"
        assert exchange(sock, b"late\n") == b"done late\n"
    assert daemon.process.wait(10) == 0


@pytest.mark.parametrize("ignores_term, status", [(False, "exit 7"), (True, "signal 9")])
def test_sigterm_drain_signals_programs_at_the_deadline(daemon_factory, ignores_term, status):
    trap = "trap '' TERM" if ignores_term else "trap 'echo got TERM >&2; exit 7' TERM"
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--drain-timeout", "1",
                            "--", "/bin/sh", "-c", f"{trap}; echo ready >&2; while :; do sleep 0.05; done")
    with daemon.connect():
        wait_for_log(daemon, "program: ready")
        started = time.monotonic()
        assert daemon.stop() == 0
        elapsed = time.monotonic() - started
    log = daemon.stderr_text()
    assert re.search(r"connections=1 .*drain timeout", log), "the program's connection held the drain: " + log
    assert f"status={status}" in log, log
    assert ("got TERM" in log) != ignores_term
    assert 1 <= elapsed < 6, elapsed


def test_no_zombies_are_left(daemon_factory):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--log-level", "info", "--", "/bin/cat")
    for round in range(20):
        with daemon.connect() as sock:
            assert exchange(sock, b"x") == b"x"
    assert wait_for(lambda: daemon.stderr_text().count("program exited") == 20)
    assert wait_for(lambda: children(daemon.process.pid) == []), \
        [(child, state(child)) for child in children(daemon.process.pid)]
    stop(daemon)


def test_workers_run_their_own_programs(daemon_factory):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--workers", "2", "--log-level", "info",
                            "--", "/usr/bin/env")
    for round in range(6):
        with daemon.connect() as sock:
            env = environment_of(sock)
        assert env["PROTO"] == "TCP" and not any(name.startswith("EVSERVED_") for name in env), env
    assert wait_for(lambda: daemon.stderr_text().count("program exited") == 6), daemon.stderr_text()
    workers = children(daemon.process.pid)
    assert len(workers) == 2
    assert wait_for(lambda: all(children(worker) == [] for worker in workers)), "a worker left a zombie"
    stop(daemon)


def test_figures_count_the_running_programs(daemon_factory):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--", "/bin/sh", "-c", "read line")
    sockets = [daemon.connect() for _ in range(3)]
    assert wait_for(lambda: len(children(daemon.process.pid)) == 3)
    daemon.process.send_signal(signal.SIGUSR1)
    wait_for_log(daemon, r"exec-children=3 .*figures")
    for sock in sockets:
        exchange(sock, b"bye\n")
        sock.close()
    assert wait_for(lambda: children(daemon.process.pid) == [])
    daemon.process.send_signal(signal.SIGUSR1)
    wait_for_log(daemon, r"exec-children=0 .*figures")
    stop(daemon)


@pytest.mark.parametrize("mode", ["event", "thread"])
def test_banner_comes_first_on_a_builtin_service(daemon_factory, mode):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0?service=daytime",
                            "--listen", "tcp://127.0.0.1:0?service=echo", "--mode", mode, "--banner", "hi there\r\n")
    with daemon.connect(0) as sock:
        assert re.fullmatch(rb"hi there\r\n\w+, .*\r\n", recv_all(sock))
    with daemon.connect(1) as sock:
        assert exchange(sock, b"echoed") == b"hi there\r\nechoed"
    stop(daemon)


def test_banner_is_a_line_that_comes_before_the_programs_output(daemon_factory):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--banner", "220 ready", "--", "/bin/cat")
    with daemon.connect() as sock:
        assert exchange(sock, b"line\n") == b"220 ready\r\nline\n"  # CRLF added
    stop(daemon)


def test_a_banner_with_its_own_line_end_is_sent_as_given(daemon_factory):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0?service=echo", "--banner", "hello\n")
    with daemon.connect() as sock:
        assert exchange(sock, b"x") == b"hello\nx"
    stop(daemon)


def test_a_listener_with_its_own_service_keeps_it(daemon_factory):
    path = short_unix_path("upper")
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--listen", f"unix://{path}?service=upper",
                            "--listen", "udp://127.0.0.1:0", "--", "/usr/bin/env")
    with daemon.connect(0) as sock:
        assert environment_of(sock)["PROTO"] == "TCP"
    with daemon.connect(1) as sock:
        assert exchange(sock, b"abc") == b"ABC"
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.settimeout(10)
    udp.sendto(b"ping", tcp_address(daemon.urls[2].replace("udp://", "tcp://")))
    assert udp.recv(100) == b"ping", "datagram listeners keep their built-in service (echo)"
    udp.close()
    stop(daemon)
