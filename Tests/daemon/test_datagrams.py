"""The built-in services over UDP (IPv4, IPv6) and Unix datagrams in every mode, and what datagram servers
must get right: oversize datagrams, clients without an address, floods, dual stack."""
import os
import socket
import time

import pytest

from conftest import (DAYTIME, MODES, DatagramClient, connect_url, process_figures, run_evserved, service_daemon,
                      short_unix_path, wait_for)

TRANSPORTS = ["udp4", "udp6", "unixgram"]
PATTERN = b"".join(bytes((32 + (start + i) % 95) for i in range(72)) + b"\r\n" for start in range(95))


@pytest.fixture(scope="module", params=MODES)
def mode_daemon(request):
    daemon = service_daemon(request.param, TRANSPORTS, "--threads", "4")
    yield daemon
    assert daemon.stop() == 0, daemon.stderr_text()
    for (transport, _), url in daemon.by_key.items():
        if transport == "unixgram":
            assert not os.path.exists(url[len("unixgram://"):]), "socket file removed on exit"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_listening_lines_name_the_datagram_scheme(mode_daemon, transport):
    url = mode_daemon.by_key[(transport, "echo")]
    assert url.startswith("unixgram:///" if transport == "unixgram" else "udp://")
    assert not url.endswith(":0")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_echo_three_sequential_clients(mode_daemon, transport):
    for index in range(3):
        with DatagramClient(mode_daemon.by_key[(transport, "echo")]) as client:
            assert client.ask(b"hello world %d\n" % index) == b"hello world %d\n" % index


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_echo_is_verbatim_for_binary(mode_daemon, transport):
    payload = bytes(range(256)) * 200 + b"\0"
    with DatagramClient(mode_daemon.by_key[(transport, "echo")]) as client:
        assert client.ask(payload) == payload
        assert client.ask(b"") == b"", "an empty datagram is echoed as one"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_upper(mode_daemon, transport):
    with DatagramClient(mode_daemon.by_key[(transport, "upper")]) as client:
        assert client.ask(b"hello World 42\n\xff") == b"HELLO WORLD 42\n\xff"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_daytime_answers_any_datagram(mode_daemon, transport):
    with DatagramClient(mode_daemon.by_key[(transport, "daytime")]) as client:
        assert DAYTIME.fullmatch(client.ask(b"what time is it?"))
        assert DAYTIME.fullmatch(client.ask(b""))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_discard_answers_nothing(mode_daemon, transport):
    with DatagramClient(mode_daemon.by_key[(transport, "discard")]) as client:
        for _ in range(5):
            client.send(b"x" * 1000)
        assert client.receives_nothing(within=0.3)
    with DatagramClient(mode_daemon.by_key[(transport, "echo")]) as client:
        assert client.ask(b"alive") == b"alive"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_chargen_answers_each_datagram_with_0_to_512_pattern_characters(mode_daemon, transport):
    with DatagramClient(mode_daemon.by_key[(transport, "chargen")]) as client:
        lengths = set()
        for _ in range(20):
            reply = client.ask(b"")
            assert len(reply) <= 512
            assert reply in PATTERN * 2, "a contiguous run of the RFC 864 pattern"
            lengths.add(len(reply))
        assert len(lengths) > 1, "the length varies from datagram to datagram"


@pytest.mark.parametrize("mode", ["event", "pool"])
def test_oversize_datagram_is_dropped_whole_and_logged(daemon_factory, mode):
    daemon = daemon_factory("--listen", "udp://127.0.0.1:0", "--mode", mode, "--max-datagram-size", "100")
    with DatagramClient(daemon.urls[0]) as client:
        client.send(b"x" * 101)
        assert client.receives_nothing(within=0.3)
        assert client.ask(b"y" * 100) == b"y" * 100
    assert daemon.stop() == 0
    assert "dropped a datagram of 101 bytes, larger than the maximum of 100" in daemon.stderr_text()


def test_the_largest_udp_datagram_is_served_whole(daemon_factory):
    daemon = daemon_factory("--listen", "udp://127.0.0.1:0")
    payload = os.urandom(65_507)
    with DatagramClient(daemon.urls[0]) as client:
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        assert client.ask(payload) == payload


@pytest.mark.parametrize("mode", ["event", "thread"])
def test_unix_client_without_a_path_gets_no_reply_and_no_log_storm(daemon_factory, mode):
    path = short_unix_path("anon")
    daemon = daemon_factory("--listen", "unixgram://" + path, "--mode", mode)
    with DatagramClient(daemon.urls[0], bind=False) as anonymous:
        for _ in range(200):
            anonymous.send(b"no return address")
        assert anonymous.receives_nothing(within=0.2)
    with DatagramClient(daemon.urls[0]) as named:
        assert named.ask(b"me") == b"me"
    assert daemon.stop() == 0
    log = daemon.stderr_text()
    assert log.count("did not bind a path") == 1, log


@pytest.mark.parametrize("mode", ["pool", "event"])
def test_a_burst_of_100000_datagrams_leaves_threads_and_memory_bounded(daemon_factory, mode):
    daemon = daemon_factory("--listen", "udp://127.0.0.1:0", "--mode", mode, "--threads", "2", "--queue", "16")
    pid = daemon.process.pid
    with DatagramClient(daemon.urls[0]) as warmup:
        assert warmup.ask(b"warm") == b"warm"
    threads_before, rss_before = process_figures(pid)
    peak_threads, peak_rss = threads_before, rss_before
    with DatagramClient(daemon.urls[0]) as flooder:
        flooder.sock.setblocking(False)
        sent = 0
        payload = b"f" * 64
        while sent < 100_000:
            try:
                flooder.sock.sendto(payload, flooder.target)
                sent += 1
            except BlockingIOError:
                time.sleep(0.001)
            if sent % 10_000 == 0:
                threads, rss = process_figures(pid)
                peak_threads, peak_rss = max(peak_threads, threads), max(peak_rss, rss)
    # The flood is over once a fresh datagram is answered (in pool mode one may be dropped while the queue
    # is still full: ask again until one is answered).
    with DatagramClient(daemon.urls[0], timeout=0.2) as probe:
        def answered():
            try:
                return probe.ask(b"drained?") == b"drained?"
            except socket.timeout:
                return False
        assert wait_for(answered), "the daemon never answered after the flood"
    threads, rss = process_figures(pid)
    peak_threads, peak_rss = max(peak_threads, threads), max(peak_rss, rss)
    assert peak_threads <= threads_before, f"threads grew from {threads_before} to {peak_threads}"
    assert peak_rss - rss_before < 32 * 1024, f"resident memory grew by {peak_rss - rss_before} KiB"
    with DatagramClient(daemon.urls[0]) as fresh:
        assert fresh.ask(b"still answering") == b"still answering"
    assert daemon.stop() == 0
    warnings = daemon.stderr_text().count("pool full")
    assert warnings <= 20, f"{warnings} 'pool full' lines: the warning must be throttled"


@pytest.mark.parametrize("ipv6_only", [False, True])
def test_ipv6_wildcard_is_dual_stack_unless_ipv6_only(daemon_factory, ipv6_only):
    flags = ["--ipv6-only"] if ipv6_only else []
    daemon = daemon_factory("--listen", "udp://[::]:0", "--listen", "tcp://[::]:0", *flags)
    udp_port = int(daemon.urls[0].rsplit(":", 1)[1])
    tcp_port = int(daemon.urls[1].rsplit(":", 1)[1])
    with DatagramClient(f"udp://127.0.0.1:{udp_port}") as v4:
        if ipv6_only:
            v4.send(b"v4?")
            assert v4.receives_nothing(within=0.3)
        else:
            assert v4.ask(b"v4!") == b"v4!"
    with DatagramClient(f"udp://[::1]:{udp_port}") as v6:
        assert v6.ask(b"v6") == b"v6"
    if ipv6_only:
        with pytest.raises(ConnectionRefusedError):
            connect_url(f"tcp://127.0.0.1:{tcp_port}")
    else:
        with connect_url(f"tcp://127.0.0.1:{tcp_port}") as sock:
            sock.sendall(b"v4\n")
            assert sock.recv(10) == b"v4\n"


def test_udp_port_in_use_is_refused():
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    try:
        status, stderr = run_evserved("--listen", f"udp://127.0.0.1:{port}")
        assert status != 0
        assert f"cannot listen on 127.0.0.1:{port}: address in use" in stderr
    finally:
        holder.close()


def test_stale_unixgram_file_is_replaced_and_a_live_one_refused(daemon_factory):
    path = short_unix_path("stale")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(path)
    stale.close()  # the file stays, no one is bound: stale
    daemon = daemon_factory("--listen", "unixgram://" + path)
    status, stderr = run_evserved("--listen", "unixgram://" + path)
    assert status != 0 and "another server is listening on it" in stderr
    with DatagramClient(daemon.urls[0]) as client:
        assert client.ask(b"ok") == b"ok"


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--listen", "udp://127.0.0.1"], "expected HOST:PORT"),
        (["--listen", "udp://"], "expected udp://HOST:PORT"),
        (["--listen", "unixgram://relative"], "expected unixgram:///absolute/path"),
        (["--listen", "udp://[fe80::1]:7000"], "link-local: name its interface"),
        (["--listen", "udp://[fe80::1%nosuchif0]:7000"], "no network interface 'nosuchif0'"),
        (["--listen", "udp://127.0.0.1:0", "--max-datagram-size", "0"], "invalid --max-datagram-size '0': out of range: use 1 to"),
        (["--listen", "udp://127.0.0.1:0?mode=fork"], "unknown mode 'fork'"),
    ],
)
def test_bad_datagram_input_is_refused_with_a_clear_message(args, expected):
    status, stderr = run_evserved(*args)
    assert status == 1 and len(stderr.splitlines()) == 1, stderr
    assert expected in stderr, stderr
