"""Every built-in service over every stream transport in every execution mode, with real clients."""
import socket

import pytest

from conftest import DAYTIME, MODES, connect_url, recv_all, recv_until, service_daemon

TRANSPORTS = ["tcp4", "tcp6", "unix"]


@pytest.fixture(scope="module", params=MODES)
def mode_daemon(request):
    """One daemon per mode, with a listener for each transport x service (each with its own service)."""
    daemon = service_daemon(request.param, TRANSPORTS, "--threads", "4", "--idle-timeout", "30")
    yield daemon
    assert daemon.stop() == 0, daemon.stderr_text()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_echo_three_sequential_clients(mode_daemon, transport):
    for _ in range(3):
        with connect_url(mode_daemon.by_key[(transport, "echo")]) as sock:
            sock.sendall(b"hello world\n")
            assert recv_until(sock, lambda d: d.endswith(b"\n")) == b"hello world\n"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_echo_is_verbatim_for_binary_and_returns_everything_after_half_close(mode_daemon, transport):
    payload = bytes(range(256)) * 2048 + b"\0\r\n\xff"  # 512 KiB + 4 bytes, NULs and all
    with connect_url(mode_daemon.by_key[(transport, "echo")]) as sock:
        received = bytearray()
        view = memoryview(payload)
        sock.setblocking(False)
        import selectors
        selector = selectors.DefaultSelector()
        selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
        sent = 0
        done_writing = False
        while True:
            events = selector.select(10)
            assert events, "echo stalled"
            for _, mask in events:
                if mask & selectors.EVENT_WRITE and not done_writing:
                    sent += sock.send(view[sent:sent + 65536])
                    if sent == len(payload):
                        sock.shutdown(socket.SHUT_WR)
                        done_writing = True
                        selector.modify(sock, selectors.EVENT_READ)
                if mask & selectors.EVENT_READ:
                    chunk = sock.recv(65536)
                    if not chunk:
                        assert bytes(received) == payload
                        return
                    received += chunk


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_upper(mode_daemon, transport):
    for _ in range(3):
        with connect_url(mode_daemon.by_key[(transport, "upper")]) as sock:
            sock.sendall(b"hello World 42\nsecond line\n")
            reply = recv_until(sock, lambda d: d.count(b"\n") == 2)
            assert reply == b"HELLO WORLD 42\nSECOND LINE\n"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_daytime_sends_one_line_then_closes(mode_daemon, transport):
    with connect_url(mode_daemon.by_key[(transport, "daytime")]) as sock:
        assert DAYTIME.fullmatch(recv_all(sock))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_discard_reads_everything_and_answers_nothing(mode_daemon, transport):
    with connect_url(mode_daemon.by_key[(transport, "discard")]) as sock:
        sock.sendall(b"x" * 300_000)
        sock.shutdown(socket.SHUT_WR)
        assert recv_all(sock) == b""
    # and the service still serves a fresh client: takes its bytes, answers nothing, closes at its end
    with connect_url(mode_daemon.by_key[(transport, "discard")]) as sock:
        sock.sendall(b"more")
        sock.shutdown(socket.SHUT_WR)
        assert recv_all(sock) == b"", "closed in order, without a byte (a read timeout would raise)"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_chargen_streams_rotating_lines(mode_daemon, transport):
    with connect_url(mode_daemon.by_key[(transport, "chargen")]) as sock:
        data = recv_until(sock, lambda d: len(d) >= 74 * 200)
    lines = data.split(b"\r\n")[:200]
    printable = bytes(range(32, 127))
    for index, line in enumerate(lines):
        start = index % 95
        expected = (printable * 2)[start:start + 72]
        assert line == expected, f"line {index}"


def test_every_mode_serves_clients_at_once_except_sync(mode_daemon):
    """Two clients connected together: the second is answered while the first stays open (not in sync)."""
    url = mode_daemon.by_key[("tcp4", "echo")]
    first = connect_url(url)
    first.sendall(b"one\n")
    assert recv_until(first, lambda d: d.endswith(b"\n")) == b"one\n"
    second = connect_url(url)
    second.sendall(b"two\n")
    if mode_daemon.mode == "sync":
        second.settimeout(0.3)
        with pytest.raises(socket.timeout):
            second.recv(10)
        first.close()
        second.settimeout(10)
        assert recv_until(second, lambda d: d.endswith(b"\n")) == b"two\n"
    else:
        assert recv_until(second, lambda d: d.endswith(b"\n")) == b"two\n"
        first.close()
    second.close()
