"""Each built-in service looks the same from the client whatever --mode is: the same client script against
all five modes gets the same bytes, framing and close (issue 13)."""
import re
import socket

import pytest

from conftest import recv_all, recv_until

MODES = ["event", "sync", "thread", "pool", "async"]


def run_script(daemon_factory, service, script, *flags):
    """Runs `script(sock)` against `service` in every mode; returns {mode: what script returned}."""
    results = {}
    for mode in MODES:
        daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--service", service, "--mode", mode, *flags)
        host, port = daemon.urls[0][len("tcp://"):].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            results[mode] = script(sock)
        assert daemon.stop() == 0
    return results


def assert_same(results, expected):
    for mode, result in results.items():
        assert result == expected, f"{mode} mode: {result!r}"


def test_upper_answers_each_message_without_a_newline_as_the_tutorial_client_expects(daemon_factory):
    def tutorial_client(sock):
        replies = []
        for message in (b"hello world", b"second message", b"third"):
            sock.sendall(message)
            replies.append(recv_until(sock, lambda d, n=len(message): len(d) >= n))
        return replies
    assert_same(run_script(daemon_factory, "upper", tutorial_client), [b"HELLO WORLD", b"SECOND MESSAGE", b"THIRD"])


def test_upper_takes_a_line_of_exactly_max_line_and_cuts_a_longer_one_the_same_way(daemon_factory):
    def client(sock):
        sock.sendall(b"abcdefghij\n")
        first = recv_until(sock, lambda d: d.endswith(b"\n"))
        sock.sendall(b"klmnopqrstuvwxyz\n")
        return first, recv_all(sock)
    assert_same(
        run_script(daemon_factory, "upper", client, "--max-line", "10"),
        (b"ABCDEFGHIJ\n", b"KLMNOPQRST\r\nERROR line longer than 10 bytes\r\n"),
    )


def test_upper_owes_nothing_at_the_idle_timeout(daemon_factory):
    def client(sock):
        sock.sendall(b"no newline")
        reply = recv_until(sock, lambda d: len(d) >= 10)
        return reply, recv_all(sock)  # the idle timeout closes: nothing more arrives
    assert_same(run_script(daemon_factory, "upper", client, "--idle-timeout", "0.3"), (b"NO NEWLINE", b""))


def test_echo_returns_every_byte_then_closes_after_the_client_half_closes(daemon_factory):
    payload = bytes(range(256)) * 40
    def client(sock):
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        return recv_all(sock)
    assert_same(run_script(daemon_factory, "echo", client), payload)


def test_discard_sends_nothing_and_closes_at_end_of_input(daemon_factory):
    def client(sock):
        sock.sendall(b"into the void\n" * 100)
        sock.shutdown(socket.SHUT_WR)
        return recv_all(sock)
    assert_same(run_script(daemon_factory, "discard", client), b"")


def test_daytime_sends_one_line_then_closes(daemon_factory):
    def client(sock):
        text = recv_all(sock).decode()
        return re.fullmatch(r"\w+day, \w+ \d\d, \d{4} \d\d:\d\d:\d\d-\w+\r\n", text) is not None
    assert_same(run_script(daemon_factory, "daytime", client), True)


def test_chargen_streams_the_same_pattern(daemon_factory):
    def client(sock):
        return recv_until(sock, lambda d: len(d) >= 7400)[:7400]
    results = run_script(daemon_factory, "chargen", client)
    first = results["event"]
    assert first[:74] == bytes(range(32, 104)) + b"\r\n"
    assert_same(results, first)
