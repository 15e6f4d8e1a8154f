"""--log-format json and --log-connections: every line of the JSON log parses and has time, level, message
and the metadata as fields; one line per closed connection, with the bytes each way and why it closed."""
import json
import os
import signal
import socket
import struct
import time

import pytest

from conftest import MODES, Daemon, recv_until, short_unix_path, wait_for


def json_lines(daemon):
    """Every stderr line so far, parsed (each must be one JSON object)."""
    return [json.loads(line) for line in daemon.stderr_text().splitlines() if line.strip()]


def closed_lines(daemon):
    return [line for line in json_lines(daemon) if line["message"] == "connection closed"]


def wait_for_closed(daemon, count=1):
    assert wait_for(lambda: len(closed_lines(daemon)) >= count), daemon.stderr_text()
    return closed_lines(daemon)


def echo_once(daemon, payload):
    """Sends `payload` to the echo service, reads it back, then ends its input and waits for the close."""
    with daemon.connect() as sock:
        sock.settimeout(10)
        sock.sendall(payload)
        assert recv_until(sock, lambda data: len(data) >= len(payload)) == payload
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(1) == b""


def test_json_lines_parse_and_carry_time_level_message_and_metadata(daemon_factory):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--log-format", "json", "--log-level", "info")
    assert wait_for(lambda: any(line["message"] == "started" for line in json_lines(daemon)))
    assert daemon.stop() == 0
    lines = json_lines(daemon)
    assert lines and all({"time", "level", "message", "label"} <= line.keys() for line in lines)
    assert all(line["time"].endswith("Z") and line["time"][10] == "T" for line in lines)
    listening = next(line for line in lines if line["message"] == "listening")
    assert listening["level"] == "notice"
    assert listening["listener"] == daemon.urls[0]  # metadata: a field of its own
    assert listening["evserver.mode"] == "event"
    assert lines[-1]["message"] == "stopped"


def test_json_stays_valid_whatever_a_value_contains(daemon_factory):
    # A Unix path with a quote, a backslash, a tab, a newline, a control character and non-ASCII characters:
    # the listening line carries it in its metadata, and must still be one valid JSON line that gives the
    # path back. (Its stdout line is not read: the newline would split it.)
    path = os.path.join(os.path.dirname(short_unix_path("x")), 'q"b\\s\tn\n\x01ü☃.sock')
    daemon = daemon_factory("--listen", "unix://" + path, "--log-format", "json", listeners=0)
    assert wait_for(lambda: any(line["message"] == "started" for line in json_lines(daemon)))
    listening = next(line for line in json_lines(daemon) if line["message"] == "listening")
    assert listening["listener"] == "unix://" + path
    assert daemon.stop() == 0


def test_text_format_stays_the_default_and_connection_lines_show_at_notice(daemon_factory):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--log-connections")
    echo_once(daemon, b"hello\n")
    assert wait_for(lambda: "connection closed" in daemon.stderr_text())
    line = next(line for line in daemon.stderr_text().splitlines() if "connection closed" in line)
    assert " info evserved.connections: " in line
    assert "bytes-in=6 bytes-out=6" in line and "reason=closed-by-peer" in line
    assert daemon.stop() == 0


@pytest.mark.parametrize("mode", MODES)
def test_one_line_per_connection_with_its_bytes_in_every_mode(daemon_factory, mode):
    daemon = daemon_factory(
        "--listen", "tcp://127.0.0.1:0", "--mode", mode, "--log-format", "json", "--log-connections"
    )
    sizes = [1, 1000, 100_000]
    for size in sizes:
        echo_once(daemon, bytes(range(256)) * (size // 256) + b"x" * (size % 256))
    lines = wait_for_closed(daemon, len(sizes))
    # Sorted: with two loops, a connection's line may come after the next one's (each loop logs its own).
    assert sorted((int(line["bytes-in"]), int(line["bytes-out"])) for line in lines) == [(n, n) for n in sizes]
    assert {line["reason"] for line in lines} == {"closed-by-peer"}
    assert {line["listener"] for line in lines} == {daemon.urls[0]}
    assert all(line["level"] == "info" and float(line["duration"]) >= 0 for line in lines)
    assert len({line["connection.id"] for line in lines}) == len(sizes)
    assert daemon.stop() == 0
    assert len(closed_lines(daemon)) == len(sizes)  # one each, never more


def json_logging(daemon_factory, mode, *args):
    """A daemon on 127.0.0.1 in `mode` logging JSON lines, one per closed connection."""
    return daemon_factory("--listen", "tcp://127.0.0.1:0", "--mode", mode, *args, "--log-format", "json",
                          "--log-connections")


@pytest.mark.parametrize("mode", ["event", "thread"])
def test_idle_timeout_is_the_reason(daemon_factory, mode):
    daemon = json_logging(daemon_factory, mode, "--idle-timeout", "0.3")
    with daemon.connect() as sock:
        sock.sendall(b"abc")
        assert recv_until(sock, lambda data: len(data) >= 3) == b"abc"
        sock.settimeout(10)
        assert sock.recv(1) == b""  # the server closed it
    (line,) = wait_for_closed(daemon)
    assert line["reason"] == "idle-timeout"
    assert (line["bytes-in"], line["bytes-out"]) == ("3", "3")
    assert float(line["duration"]) >= 0.3
    assert daemon.stop() == 0


@pytest.mark.parametrize("mode", ["event", "pool", "async"])
def test_drain_is_the_reason_for_connections_open_at_the_deadline(daemon_factory, mode):
    daemon = json_logging(daemon_factory, mode, "--drain-timeout", "0.2")
    with daemon.connect() as sock:
        sock.sendall(b"x")
        assert sock.recv(1) == b"x"
        daemon.process.send_signal(signal.SIGTERM)
        sock.settimeout(10)
        assert sock.recv(1) == b""  # input ended at the deadline: echo closes
        assert daemon.process.wait(10) == 0
    (line,) = closed_lines(daemon)
    assert line["reason"] == "drain"


def test_a_reset_is_the_reason(daemon_factory):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--log-format", "json", "--log-connections")
    sock = daemon.connect()
    sock.sendall(b"ab")
    assert recv_until(sock, lambda data: len(data) >= 2) == b"ab"
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # RST
    (line,) = wait_for_closed(daemon)
    assert line["reason"] == "reset"
    assert line["bytes-in"] == "2"
    assert daemon.stop() == 0


def test_refused_connections_are_reported_with_their_reason(daemon_factory):
    daemon = daemon_factory(
        "--listen", "tcp://127.0.0.1:0", "--deny", "127.0.0.0/8", "--log-format", "json", "--log-connections"
    )
    with daemon.connect() as sock:
        sock.settimeout(10)
        assert sock.recv(1) == b""
    (line,) = wait_for_closed(daemon)
    assert line["reason"] == "denied" and line["bytes-in"] == "0"
    assert daemon.stop() == 0
