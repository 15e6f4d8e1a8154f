"""The ported socketserver tutorials (Examples/*): each example runs as its own process and is driven by a
plain Python `socket` client written the way the tutorials write theirs (`sendall`, `recv(1024)`, no
framing library), then stopped with a signal: it must exit 0."""
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import BINARY, TIMEOUT, Daemon, starting

HOST = "127.0.0.1"
EXAMPLES = os.path.dirname(BINARY)  # the example binaries are built next to evserved


class Example(Daemon):
    """One running example server; `port` is the one it printed (`listening tcp://127.0.0.1:PORT`)."""

    def __init__(self, name, *args):
        self.args = [os.path.join(EXAMPLES, name), *args]
        self.stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=self.stderr)
        self._pending = b""
        self.url = self._read_listening_line()
        self.port = int(re.fullmatch(r"(tcp|udp)://127\.0\.0\.1:(\d+)", self.url).group(2))


@pytest.fixture
def example():
    yield from starting(Example)


def tcp_client(port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT)
    sock.connect((HOST, port))
    return sock


def recv_line(sock):
    """recv(1024) until the reply's newline (a short reply comes in one segment on loopback)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1024)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    return data


def until(condition, what):
    """Polls `condition` until it holds, failing after TIMEOUT."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


# 1. The socketserver docs' TCPServer example.

def test_upper_answers_each_message_without_newline(example):
    server = example("upper-example", "0")
    with tcp_client(server.port) as sock:
        for message in [b"hello", b"The quick brown fox jumps over the lazy dog", b"caf\xc3\xa9 au lait", b"two\nlines\n", b"x" * 1000]:
            sock.sendall(message)
            received = sock.recv(1024)
            assert received == message.upper()  # bytes.upper(): ASCII only
    with tcp_client(server.port) as sock:  # the next client, after the first left (one at a time)
        sock.sendall(b"again")
        assert sock.recv(1024) == b"AGAIN"
    assert server.stop() == 0
    assert "handler failed" not in server.stderr_text()


# 2. The timestamp server (TCPServer + StreamRequestHandler, one line per connection).

def test_timestamp_answers_one_line_then_closes(example):
    server = example("timestamp-example", "0")
    for text in [b"hello", b"what time is it?", b""]:
        with tcp_client(server.port) as sock:
            sock.send(text + b"\r\n")
            data = sock.recv(1024)
            match = re.fullmatch(rb"\[(\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4})\] (.*)\r\n", data, re.S)
            assert match, data
            assert match.group(2) == text
            stamp = match.group(1).decode()
            when = time.mktime(time.strptime(stamp, "%a %b %d %H:%M:%S %Y"))
            assert time.ctime(when) == stamp  # ctime style, padding included
            assert abs(when - time.time()) < 5
            assert sock.recv(1024) == b"", "the server keeps the connection after its one reply"
    assert server.stop(signal.SIGINT) == 0


# 3. The threaded server: ThreadingMixIn, setup/handle/finish, a shared client list, a timeout.

def test_threaded_replies_with_thread_name_and_counts_clients(example):
    server = example("threaded-example", "0", "1")  # 1 s timeout instead of 6
    with tcp_client(server.port) as ada, tcp_client(server.port) as bob:
        ada.sendall(b"hello\n")
        assert recv_line(ada) == b"evserver-work: HELLO\n"
        bob.sendall(b"hi there\r\n")
        assert recv_line(bob) == b"evserver-work: HI THERE\n"
        ada.sendall(b"who\n")
        assert recv_line(ada) == b"2\n"
        bob.close()  # finish() removes it

        def ada_alone():
            ada.sendall(b"who\n")
            return recv_line(ada) == b"1\n"
        until(ada_alone, "finish() to remove the client that left")
    assert server.stop() == 0
    assert "handler failed" not in server.stderr_text()


def test_threaded_closes_a_silent_client_at_its_timeout(example):
    server = example("threaded-example", "0", "0.5")
    with tcp_client(server.port) as sock:
        sock.sendall(b"one\n")
        assert recv_line(sock) == b"evserver-work: ONE\n"
        started = time.monotonic()
        assert sock.recv(1024) == b"", "the client is told nothing, only closed"
        assert 0.4 <= time.monotonic() - started < 3, "closed at the 0.5 s timeout (not the default 6 s)"
    with tcp_client(server.port) as sock:  # its finish() ran: it is no longer counted

        def alone():
            sock.sendall(b"who\n")
            return recv_line(sock) == b"1\n"
        until(alone, "the timed-out client to leave the list")
    assert server.stop() == 0
    # handle() caught the timeout: nothing reached the server's handleError (which logs "handler failed").
    assert "handler failed" not in server.stderr_text(), server.stderr_text()


# 4. The hand-rolled thread pool, bounded: 4 threads, 16 waiting connections.

def test_pool_serves_20_concurrent_clients_on_at_most_4_threads(example):
    server = example("pool-example", "0")
    connected = threading.Barrier(20, timeout=TIMEOUT)
    replies = [None] * 20

    def client(index):
        with tcp_client(server.port) as sock:
            connected.wait()  # all 20 connected before anyone sends
            sock.sendall(b"client %d\n" % index)
            replies[index] = recv_line(sock)

    clients = [threading.Thread(target=client, args=(index,)) for index in range(20)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join(TIMEOUT)
    names = set()
    for index, reply in enumerate(replies):
        match = re.fullmatch(rb"(evserver-wk-\d+): client (\d+)\n", reply or b"")
        assert match and int(match.group(2)) == index, f"client {index} got {reply!r}"
        names.add(match.group(1))
    assert 1 <= len(names) <= 4, names
    assert server.stop() == 0


def test_pool_fifth_client_waits_for_a_free_worker(example):
    server = example("pool-example", "0")
    held = [tcp_client(server.port) for _ in range(4)]
    names = []
    for index, sock in enumerate(held):  # each held connection keeps one worker
        sock.sendall(b"held %d\n" % index)
        names.append(recv_line(sock).split(b":")[0])
    assert len(set(names)) == 4, names
    with tcp_client(server.port) as fifth:
        fifth.sendall(b"fifth\n")  # queued: every worker is taken
        held[2].close()  # frees the worker that served it, which takes the queued connection
        assert recv_line(fifth) == names[2] + b": fifth\n"
    for sock in held:
        sock.close()
    assert server.stop() == 0


# 5. The socketserver docs' UDPServer example, and its client.

def test_udp_answers_each_datagram_upper_cased(example):
    server = example("udp-example", "0")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(TIMEOUT)
    for data in [b"hello world\n", b"no newline", b"caf\xc3\xa9"]:
        sock.sendto(data, (HOST, server.port))
        received = sock.recv(1024)
        assert received == data.upper()
    sock.close()
    assert server.stop() == 0


def test_udp_client_example_against_the_server(example):
    server = example("udp-example", "0")
    client = subprocess.run([os.path.join(EXAMPLES, "udp-client-example"), str(server.port), "hello udp"],
                            capture_output=True, timeout=TIMEOUT)
    assert client.returncode == 0, client
    assert client.stdout == b"Sent:     hello udp\nReceived: HELLO UDP\n"
    assert server.stop(signal.SIGINT) == 0


def test_udp_client_example_without_a_server_fails():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as placeholder:  # a port nobody serves
        placeholder.bind((HOST, 0))
        port = placeholder.getsockname()[1]
    client = subprocess.run([os.path.join(EXAMPLES, "udp-client-example"), str(port), "anyone?"],
                            capture_output=True, timeout=TIMEOUT)
    assert client.returncode == 1
    assert client.stdout.startswith(b"no reply from 127.0.0.1:%d" % port)


# Every server example stops cleanly on either signal, with no client ever connected.

@pytest.mark.parametrize("name", ["upper-example", "timestamp-example", "threaded-example", "pool-example",
                                  "udp-example", "chat-example"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_example_exits_0_on_signal(example, name, sig):
    server = example(name, "0")
    assert server.stop(sig) == 0
    assert server.stderr_text() == ""
