"""PROXY protocol v1 and v2 (--proxy-protocol, ?proxy=1, --proxy-from): behind the real HAProxy (Debian's
haproxy: `make deps` installs it), and with raw clients sending hand-made headers. The `whoami` service
answers the client's address as the daemon sees it, so each test reads what got through."""
import re
import signal
import socket
import struct
import subprocess
import time

import pytest

from conftest import MODES, TIMEOUT, recv_until_closed, run_evserved, short_unix_path, tcp_address, wait_for
from haproxy import haproxy  # noqa: F401 (the fixture)

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(source, destination, sport, dport):
    family = "TCP6" if ":" in source else "TCP4"
    return f"PROXY {family} {source} {destination} {sport} {dport}\r\n".encode()


def v2(source, destination, sport, dport, command=1, tlvs=b""):
    if ":" in source:
        block = socket.inet_pton(socket.AF_INET6, source) + socket.inet_pton(socket.AF_INET6, destination)
        family = 0x21
    else:
        block = socket.inet_aton(source) + socket.inet_aton(destination)
        family = 0x11
    body = block + struct.pack("!HH", sport, dport) + tlvs
    return V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack("!H", len(body)) + body


V2_LOCAL = V2_SIGNATURE + bytes([0x20, 0x00, 0, 0])


def client(url, source=None):
    """A TCP client of `url`, bound to `source` when given (127.0.0.2, ... are loopback too)."""
    sock = socket.socket(socket.AF_INET6 if url.startswith("tcp://[") else socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT)
    if source:
        sock.bind((source, 0))
    sock.connect(tcp_address(url))
    return sock


def ask(url, payload, source=None):
    """Sends `payload` (in one send) and returns what came back until the daemon closed, and how."""
    with client(url, source) as sock:
        sock.sendall(payload)
        return recv_until_closed(sock)


def whoami(url, header, source=None):
    data, _ = ask(url, header, source)
    return data.decode()


def figures(daemon, key):
    """The daemon's figure `key`, summed over its listeners, from fresh SIGUSR1 lines (one per listener)."""
    count = len(daemon.urls)
    before = daemon.stderr_text().count(" figures\n")
    daemon.process.send_signal(signal.SIGUSR1)
    assert wait_for(lambda: daemon.stderr_text().count(" figures\n") >= before + count), "no figures lines"
    lines = [line for line in daemon.stderr_text().splitlines() if line.endswith(" figures")][before:]
    return sum(int(value) for line in lines for value in re.findall(rf"\b{key}=(\d+)", line))


# MARK: Raw clients


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_sees_the_address_in_v1_and_v2_headers_and_gets_the_bytes_after_them(daemon_factory, mode):
    daemon = daemon_factory(
        "--listen", "tcp://127.0.0.1:0?service=whoami", "--listen", "tcp://127.0.0.1:0?service=echo",
        "--listen", "tcp://[::1]:0?service=whoami", "--proxy-protocol", "--mode", mode,
    )
    who, echo, who6 = daemon.urls
    assert whoami(who, v1("203.0.113.7", "192.0.2.1", 51234, 443)) == "203.0.113.7:51234\r\n"
    assert whoami(who, v2("198.51.100.9", "10.0.0.1", 4000, 80, tlvs=b"\x01\x00\x02h2")) == "198.51.100.9:4000\r\n"
    assert whoami(who6, v1("2001:db8::1", "::1", 7, 9)) == "[2001:db8::1]:7\r\n"
    assert whoami(who6, v2("2001:db8::2", "::1", 8, 9)) == "[2001:db8::2]:8\r\n"
    # The bytes after the header, in the same segment, reach the handler; the header does not.
    for header in (v1("203.0.113.7", "192.0.2.1", 1, 2), v2("203.0.113.7", "192.0.2.1", 1, 2)):
        with client(echo) as sock:
            sock.sendall(header + b"hello\n")
            assert sock.recv(100) == b"hello\n"
            sock.sendall(b"more\n")
            assert sock.recv(100) == b"more\n"


def test_local_and_unknown_headers_keep_the_connections_own_address(daemon_factory):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0?service=whoami", "--proxy-protocol")
    for header in (V2_LOCAL, b"PROXY UNKNOWN\r\n", b"PROXY UNKNOWN ::1 ::1 1 2\r\n"):
        with client(daemon.urls[0]) as sock:
            own = "%s:%d" % sock.getsockname()
            sock.sendall(header)
            assert recv_until_closed(sock)[0].decode() == own + "\r\n"
    assert figures(daemon, "proxy-local") == 3


@pytest.mark.parametrize("payload", [
    b"GET / HTTP/1.0\r\n\r\n",  # no header at all
    b"PROXY TCP4 203.0.113.7 192.0.2.1 51234\r\n",  # a field missing
    b"PROXY TCP4 203.0.113.7 192.0.2.1 51234 443\n",  # LF without CR
    b"PROXY UNKNOWN " + b"x" * 100,  # v1 longer than 107 bytes without CRLF
    V2_SIGNATURE + b"\x22\x11\x00\x0c" + b"\x00" * 12,  # v2 with an unknown command
    V2_SIGNATURE + b"\x21\x11\x00\x08" + b"\x00" * 8,  # v2 too short for its IPv4 addresses
    v2("203.0.113.7", "192.0.2.1", 1, 2, tlvs=b"\x01\x00\x09ab"),  # a TLV past the header's end
])
def test_a_malformed_or_too_long_header_closes_the_connection_and_is_counted(daemon_factory, payload):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0?service=echo", "--proxy-protocol", "--log-level", "debug")
    data, _ = ask(daemon.urls[0], payload)
    assert data == b"", "nothing of the client's bytes comes back"
    assert figures(daemon, "proxy-invalid") == 1
    assert "PROXY protocol: connection refused" in daemon.stderr_text()
    assert whoami_still_served(daemon)


def whoami_still_served(daemon):
    """The listener (echo) still serves a correct header."""
    with client(daemon.urls[0]) as sock:
        sock.sendall(v1("203.0.113.7", "192.0.2.1", 1, 2) + b"ok\n")
        return sock.recv(10) == b"ok\n"


@pytest.mark.parametrize("partial", [b"", b"PROXY TCP4 203.0.113.7 ", V2_SIGNATURE[:10]])
def test_a_header_not_complete_within_the_deadline_closes_the_connection(daemon_factory, partial):
    daemon = daemon_factory(
        "--listen", "tcp://127.0.0.1:0?service=echo", "--proxy-protocol", "--proxy-header-timeout", "0.5"
    )
    with client(daemon.urls[0]) as sock:
        started = time.monotonic()
        sock.sendall(partial)
        data, _ = recv_until_closed(sock)
        elapsed = time.monotonic() - started
    assert data == b""
    assert 0.4 <= elapsed < 5, f"closed after {elapsed:.2f} s, the deadline is 0.5 s"
    assert figures(daemon, "proxy-timed-out") == 1


def test_a_source_outside_proxy_from_is_refused_before_any_byte(daemon_factory):
    daemon = daemon_factory(
        "--listen", "tcp://127.0.0.1:0?service=whoami", "--proxy-protocol", "--proxy-from", "127.0.0.1/32",
    )
    header = v1("203.0.113.7", "192.0.2.1", 1, 2)
    assert whoami(daemon.urls[0], header, source="127.0.0.2") == ""
    assert whoami(daemon.urls[0], header, source="127.0.0.1") == "203.0.113.7:1\r\n"
    assert figures(daemon, "proxy-untrusted") == 1


def test_without_proxy_from_only_loopback_is_trusted(daemon_factory):
    # Every test address is loopback; a listener on a non-loopback address of this host shows the refusal.
    outside = next((a for a in local_addresses() if not a.startswith("127.")), None)
    if outside is None:
        pytest.skip("this host has no non-loopback IPv4 address")
    daemon = daemon_factory("--listen", f"tcp://{outside}:0?service=whoami", "--proxy-protocol")
    header = v1("203.0.113.7", "192.0.2.1", 1, 2)
    assert whoami(daemon.urls[0], header, source=outside) == ""
    assert figures(daemon, "proxy-untrusted") == 1


def local_addresses():
    output = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    return re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/", output)


def test_per_client_limits_count_the_real_address(daemon_factory):
    daemon = daemon_factory(
        "--listen", "tcp://127.0.0.1:0?service=echo", "--proxy-protocol", "--max-connections-per-client", "1",
    )
    url = daemon.urls[0]
    first = client(url)
    first.sendall(v1("10.0.0.1", "192.0.2.1", 1000, 7) + b"a\n")
    assert first.recv(10) == b"a\n"
    assert ask(url, v1("10.0.0.1", "192.0.2.1", 1001, 7) + b"b\n")[0] == b"", "a second one from 10.0.0.1"
    with client(url) as other:
        other.sendall(v1("10.0.0.2", "192.0.2.1", 1000, 7) + b"c\n")
        assert other.recv(10) == b"c\n", "10.0.0.2 has its own allowance, though HAProxy's address is the same"
    first.close()


def test_deny_applies_to_the_address_in_the_header(daemon_factory):
    daemon = daemon_factory(
        "--listen", "tcp://127.0.0.1:0?service=whoami", "--proxy-protocol", "--deny", "203.0.113.0/24",
    )
    assert whoami(daemon.urls[0], v1("203.0.113.7", "192.0.2.1", 1, 2)) == ""
    assert whoami(daemon.urls[0], v1("198.51.100.1", "192.0.2.1", 1, 2)) == "198.51.100.1:1\r\n"


@pytest.mark.parametrize("args, message", [
    (["--listen", "udp://127.0.0.1:0?proxy=1"], "proxy=1 is for stream listeners"),
    (["--listen", "tcp://127.0.0.1:0?proxy=yes"], "use proxy=1"),
    (["--listen", "tcp://127.0.0.1:0", "--proxy-from", "10.0.0.0/33"], "invalid --proxy-from '10.0.0.0/33'"),
    (["--listen", "tcp://127.0.0.1:0", "--proxy-header-timeout", "0"], "invalid --proxy-header-timeout '0'"),
])
def test_bad_proxy_flags_are_one_line_and_status_1(args, message):
    status, stderr = run_evserved(*args)
    assert status == 1 and message in stderr and len(stderr.strip().splitlines()) == 1, stderr


def test_a_unix_listener_with_proxy_1_trusts_its_clients(daemon_factory):
    # A balancer on this host may relay through a Unix socket; its file's permissions guard who connects.
    path = short_unix_path("proxy")
    daemon = daemon_factory("--listen", f"unix://{path}?service=whoami&proxy=1")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect(path)
        sock.sendall(v2("203.0.113.7", "192.0.2.1", 51234, 443))
        assert recv_until_closed(sock)[0] == b"203.0.113.7:51234\r\n"


def test_proxy_0_turns_it_off_for_one_listener(daemon_factory):
    daemon = daemon_factory(
        "--listen", "tcp://127.0.0.1:0?service=whoami&proxy=0", "--listen", "tcp://127.0.0.1:0?service=whoami",
        "--proxy-protocol",
    )
    with client(daemon.urls[0]) as sock:
        own = "%s:%d" % sock.getsockname()
        assert recv_until_closed(sock)[0].decode() == own + "\r\n"
    assert whoami(daemon.urls[1], v1("203.0.113.7", "192.0.2.1", 1, 2)) == "203.0.113.7:1\r\n"


# MARK: Behind HAProxy


@pytest.mark.parametrize("mode", ["event", "pool", "async"])
def test_behind_haproxy_the_daemon_sees_the_real_clients_and_denies_by_their_address(daemon_factory, haproxy, mode):
    daemon = daemon_factory(
        "--listen", "tcp://127.0.0.1:0?service=whoami&proxy=1", "--listen", "tcp://127.0.0.1:0?service=whoami&proxy=1",
        "--listen", "tcp://127.0.0.1:0?service=echo&proxy=1", "--proxy-from", "127.0.0.1/32",
        "--deny", "127.0.0.2/32", "--mode", mode, "--log-level", "info",
    )
    who1, who2, echo = daemon.urls
    proxy = haproxy({"v1": (who1, "send-proxy"), "v2": (who2, "send-proxy-v2"), "echo": (echo, "send-proxy-v2")})
    for name in ("v1", "v2"):
        for source in ("127.0.0.3", "127.0.0.4"):
            with client(proxy.url(name), source) as sock:
                seen = "%s:%d\r\n" % sock.getsockname()
                assert recv_until_closed(sock)[0].decode() == seen, f"{name} from {source}"
        # HAProxy connects from 127.0.0.1, yet the denied client 127.0.0.2 is refused.
        assert whoami(proxy.url(name), b"", source="127.0.0.2") == "", name
    with client(proxy.url("echo"), "127.0.0.5") as sock:
        sock.sendall(b"hello through haproxy\n")
        assert sock.recv(100) == b"hello through haproxy\n"
    assert figures(daemon, "proxy-proxied") >= 7


def test_haproxy_health_checks_pass_and_log_no_errors(daemon_factory, haproxy):
    daemon = daemon_factory(
        "--listen", "tcp://127.0.0.1:0?service=whoami", "--listen", "tcp://127.0.0.1:0?service=echo",
        "--proxy-protocol", "--log-level", "info",
    )
    proxy = haproxy({"v1": (daemon.urls[0], "send-proxy"), "v2": (daemon.urls[1], "send-proxy-v2")})
    assert wait_for(lambda: figures(daemon, "proxy-local") + figures(daemon, "proxy-proxied") >= 10), "checks"
    for name in ("v1", "v2"):
        assert proxy.checked_up(name), proxy.stat(name)
    assert figures(daemon, "proxy-refused") == 0
    problems = [line for line in daemon.stderr_text().splitlines() if re.search(r" (warning|error|critical) ", line)]
    assert problems == [], problems


# MARK: Where the other features read the client's address


def test_exec_programs_get_the_real_client_in_tcpserver_variables(daemon_factory):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--exec", "/usr/bin/env", "--proxy-protocol")
    for header, proto, ip, port in [
        (v1("203.0.113.7", "192.0.2.1", 51234, 443), "TCP", "203.0.113.7", "51234"),
        (v2("2001:db8::1", "::1", 7, 9), "TCP6", "2001:db8::1", "7"),
    ]:
        data, _ = ask(daemon.urls[0], header)
        variables = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
        assert (variables["PROTO"], variables[proto + "REMOTEIP"], variables[proto + "REMOTEPORT"]) == (proto, ip, port)


def test_connection_lines_and_metrics_count_the_real_client(daemon_factory):
    daemon = daemon_factory(
        "--listen", "tcp://127.0.0.1:0?service=echo", "--proxy-protocol", "--deny", "198.51.100.0/24",
        "--log-connections", "--metrics-listen", "tcp://127.0.0.1:0",
    )
    url = daemon.urls[0]
    with client(url) as sock:
        sock.sendall(v2("203.0.113.7", "192.0.2.1", 51234, 443) + b"hi\n")
        assert sock.recv(10) == b"hi\n"
    assert ask(url, v1("198.51.100.1", "192.0.2.1", 1, 2))[0] == b""  # denied by the header's address
    assert ask(url, b"junk\r\n")[0] == b""  # refused for its header
    assert wait_for(lambda: daemon.stderr_text().count("connection closed") == 3), daemon.stderr_text()
    lines = [line for line in daemon.stderr_text().splitlines() if "connection closed" in line]
    served = next(line for line in lines if "peer=203.0.113.7:51234" in line)
    assert "bytes-in=3 bytes-out=3" in served, "the header is not the client's input"
    assert any("peer=198.51.100.1:1 " in line and "reason=denied" in line for line in lines)
    host, port = re.fullmatch(r"http://(.+):(\d+)/metrics", daemon.metrics_url).groups()
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        body = recv_until_closed(sock)[0].decode()
    pattern = r'evserved_connections_refused_total\{listener="%s",reason="([^"]+)"\} (\d+)' % re.escape(url)
    refused = dict(re.findall(pattern, body))  # the listener's own (the metrics endpoint has its figures too)
    assert (refused.get("denied"), refused.get("proxy")) == ("1", "1"), body
