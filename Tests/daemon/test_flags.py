"""evserved's flags (issue 12): one rule for bad input, refused at parse time; durations and rates that are
finite and sane; --send-buffer; the default idle timeout of the blocking modes; listener log lines that name
the bound address."""
import os
import re
import socket
import subprocess
import time

import pytest

from conftest import BINARY, TIMEOUT, connect_url, recv_until, run_evserved, short_unix_path

LISTEN = ["--listen", "tcp://127.0.0.1:0"]

DURATION_FLAGS = ["--idle-timeout", "--read-timeout", "--write-timeout", "--max-lifetime", "--drain-timeout",
                  "--proxy-header-timeout"]
RATE_FLAGS = ["--max-connection-rate", "--max-connection-rate-per-client"]

# One bad value (or more) for every flag that takes a value; test_every_flag_has_a_bad_value_case checks
# that none is missing.
BAD_VALUES = [
    ("--listen", "tcp://127.0.0.1:70000"),
    ("--listen", "unix:///tmp/" + "x" * 103),  # 108 bytes: one more than sun_path holds
    ("--listen", "tcp://nonsense:80"),
    ("--listen", "ftp://127.0.0.1:21"),
    ("--service", "finger"),
    ("--mode", "fork"),
    ("--loops", "0"),
    ("--loops", "many"),
    ("--loops", "100000"),
    ("--workers", "-1"),
    ("--workers", "100000"),
    ("--threads", "0"),
    ("--threads", "1.5"),
    ("--queue", "-1"),
    ("--queue", "99999999999999999999"),
    ("--backlog", "-1"),
    ("--backlog", "4294967296"),
    ("--max-datagram-size", "0"),
    ("--max-datagram-size", "16777217"),
    ("--max-connections", "0"),
    ("--max-connections-per-client", "-3"),
    ("--allow", "10.0.0.0/33"),
    ("--deny", "not-a-range"),
    ("--max-line", "0"),
    ("--max-line", "1e6"),
    ("--send-buffer", "4095"),
    ("--send-buffer", "67108865"),
    ("--send-buffer", "-1"),
    ("--send-buffer", "lots"),
    ("--log-level", "loud"),
    ("--log-format", "xml"),
    ("--metrics-listen", "udp://127.0.0.1:9100"),
    ("--metrics-listen", "tcp://127.0.0.1:70000"),
    ("--pid-file", ""),
    ("--pid-file", "/nonexistent-dir/evserved.pid"),
    ("--exec", "/nonexistent/program"),
    ("--exec", "no-such-program-anywhere"),
    ("--banner", ""),
    ("--banner", "x" * 1025),
    ("--listen", "fd://x"),
    ("--listen", "systemd://a:b"),
    ("--user", "no-such-user-evs"),
    ("--group", "no-such-group-evs"),
    ("--registry", "http://127.0.0.1:6379"),
    ("--registry", "redis://127.0.0.1:65536"),
    ("--registry", "redis://127.0.0.1:6379/a*b"),
    ("--proxy-from", "10.0.0.0/33"),
    ("--listen", "udp://127.0.0.1:0?proxy=1"),
    ("--listen", "tcp://127.0.0.1:0?proxy=2"),
]
# Every duration: non-finite, negative, zero (except the drain timeout, where 0 means "close at once"),
# absurd (over a year), not a number.
for flag in DURATION_FLAGS:
    BAD_VALUES += [(flag, value) for value in ["inf", "-inf", "nan", "-1", "31536001", "1e400", "10s"]]
    if flag != "--drain-timeout":
        BAD_VALUES.append((flag, "0"))
# Every rate: non-finite, zero, negative, absurd.
for flag in RATE_FLAGS:
    BAD_VALUES += [(flag, value) for value in ["inf", "nan", "0", "-5", "1e12"]]


def flags_in_help():
    """Every flag of --help that takes a value."""
    out = subprocess.run([BINARY, "--help"], capture_output=True, timeout=TIMEOUT).stdout.decode()
    return set(re.findall(r"^\s+(--[a-z-]+) <", out, re.MULTILINE))


def test_every_flag_has_a_bad_value_case():
    flags = flags_in_help()
    assert "--drain-timeout" in flags and "--send-buffer" in flags  # the help was read
    assert flags == {flag for flag, _ in BAD_VALUES}


@pytest.mark.parametrize("flag, value", BAD_VALUES)
def test_a_bad_value_exits_1_with_one_line_naming_the_flag(flag, value):
    args = ([] if flag == "--listen" else LISTEN) + [flag, value]
    status, stderr = run_evserved(*args)
    lines = stderr.splitlines()
    assert status == 1, stderr
    assert len(lines) == 1, stderr
    assert lines[0].startswith("evserved: error: invalid " + flag + " '"), lines[0]
    assert value in lines[0]
    assert "Usage" not in stderr


@pytest.mark.parametrize("flag", DURATION_FLAGS)
def test_a_duration_refusal_says_what_to_use(flag):
    status, stderr = run_evserved(*LISTEN, flag, "inf")
    assert status == 1
    assert "not a finite number of seconds" in stderr and "31536000" in stderr, stderr


@pytest.mark.parametrize(
    "args, expected",
    [
        (LISTEN + ["--frobnicate"], "Unknown option '--frobnicate'"),
        (LISTEN + ["--threads"], "Missing value for '--threads"),
        (LISTEN + ["stray"], "Unexpected argument 'stray'"),
    ],
)
def test_a_command_line_that_cannot_be_read_exits_64_with_one_line(args, expected):
    status, stderr = run_evserved(*args)
    assert status == 64, stderr
    assert len(stderr.splitlines()) == 1 and expected in stderr and "evserved --help" in stderr, stderr


@pytest.mark.parametrize("args", [["--listen", "tcp://127.0.0.1:0", "--workers", "2", "--listen", "unix:///tmp/w.sock"], []])
def test_values_that_contradict_each_other_exit_1_with_one_line(args):
    status, stderr = run_evserved(*args)
    assert status == 1 and len(stderr.splitlines()) == 1, stderr


def test_the_longest_drain_timeout_still_stops_cleanly(daemon_factory):
    """--drain-timeout inf used to be accepted, then SIGTERM crashed (Double to Int), leaving the socket
    file; the largest value accepted now must drain and exit 0."""
    path = short_unix_path("drain")
    daemon = daemon_factory("--listen", "unix://" + path, "--drain-timeout", "31536000", "--idle-timeout", "31536000",
                            "--read-timeout", "31536000", "--write-timeout", "31536000", "--max-lifetime", "31536000")
    with connect_url(daemon.urls[0]) as sock:
        sock.sendall(b"ping\n")
        assert recv_until(sock, lambda d: len(d) >= 5) == b"ping\n"
    assert daemon.stop() == 0, daemon.stderr_text()
    assert not os.path.exists(path)


# --- --send-buffer ------------------------------------------------------------------------------------

def listening_notices(daemon):
    """The `listening` notice of each listener: its metadata, as a dict."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        notices = [line for line in daemon.stderr_text().splitlines() if line.endswith("[evserved] listening")]
        if len(notices) == len(daemon.urls):
            return [dict(re.findall(r"(\S+)=(\S+)", line.split(" evserved: ", 1)[1])) for line in notices]
        assert time.monotonic() < deadline, daemon.stderr_text()
        time.sleep(0.02)


def test_send_buffer_is_accepted_and_given_to_each_listener(daemon_factory):
    daemon = daemon_factory(*LISTEN, "--listen", "unix://" + short_unix_path("sndbuf"), "--send-buffer", "65536")
    assert [notice["send-buffer"] for notice in listening_notices(daemon)] == ["65536", "65536"]
    with daemon.connect(0) as sock:
        sock.sendall(b"ping\n")
        assert recv_until(sock, lambda d: len(d) >= 5) == b"ping\n"


def test_without_send_buffer_the_system_size_is_kept(daemon_factory):
    daemon = daemon_factory(*LISTEN)
    assert listening_notices(daemon)[0]["send-buffer"] == "system"


# --- the default idle timeout of the blocking modes ---------------------------------------------------

@pytest.mark.parametrize(
    "mode, flags, expected",
    [
        ("sync", [], "300.0"),
        ("thread", [], "300.0"),
        ("pool", [], "300.0"),
        ("event", [], "none"),
        ("async", [], "none"),
        ("thread", ["--idle-timeout", "7"], "7.0"),
        ("pool", ["--idle-timeout", "none"], "none"),
        ("event", ["--idle-timeout", "2.5"], "2.5"),
    ],
)
def test_blocking_modes_default_to_a_300_second_idle_timeout(daemon_factory, mode, flags, expected):
    daemon = daemon_factory(*LISTEN, "--mode", mode, *flags)
    assert listening_notices(daemon)[0]["idle-timeout"] == expected


def test_a_udp_listener_gets_no_idle_timeout_in_a_blocking_mode(daemon_factory):
    daemon = daemon_factory("--listen", "udp://127.0.0.1:0", "--mode", "thread")
    assert listening_notices(daemon)[0]["idle-timeout"] == "none"


def test_help_states_the_default_idle_timeout():
    out = subprocess.run([BINARY, "--help"], capture_output=True, timeout=TIMEOUT).stdout.decode()
    text = " ".join(out.split())
    assert "Default: 300 s in the blocking modes (sync, thread, pool)" in text, out


def test_silent_clients_of_a_full_pool_are_closed_and_service_resumes(daemon_factory):
    """Pool mode with its one worker and its queue taken by clients that never speak: each is closed
    after the idle timeout, and a client that speaks is then served."""
    daemon = daemon_factory(*LISTEN, "--mode", "pool", "--threads", "1", "--queue", "1", "--idle-timeout", "0.5")
    silent = [daemon.connect() for _ in range(3)]
    try:
        started = time.monotonic()
        for sock in silent:
            assert sock.recv(10) == b""  # closed by the server (TIMEOUT bounds the wait)
        assert time.monotonic() - started < TIMEOUT
        with daemon.connect() as sock:
            sock.sendall(b"ping\n")
            assert recv_until(sock, lambda d: len(d) >= 5) == b"ping\n"
    finally:
        for sock in silent:
            sock.close()


# --- log lines name the bound address -----------------------------------------------------------------

def test_every_log_line_about_a_listener_names_its_bound_address(daemon_factory):
    path = short_unix_path("log")
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--listen", "udp://127.0.0.1:0",
                            "--listen", "unix://" + path, "--loops", "2", "--log-level", "trace")
    bound = {re.sub(r"^[a-z]+://", "", url) for url in daemon.urls}
    with daemon.connect(0) as sock:  # trace lines: connection opened / closed
        sock.sendall(b"ping\n")
        assert recv_until(sock, lambda d: len(d) >= 5) == b"ping\n"
    assert daemon.stop() == 0
    lines = daemon.stderr_text().splitlines()
    named = [re.search(r"listener=(\S+)", line).group(1) for line in lines if "listener=" in line]
    assert any("connection opened" in line for line in lines)
    assert len(named) >= 6
    unknown = [name for name in named if re.sub(r"^[a-z]+://", "", name) not in bound]
    assert not unknown, f"log lines name {set(unknown)}, not one of the bound {bound}"
