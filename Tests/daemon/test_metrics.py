"""--metrics-listen: Prometheus text at /metrics over HTTP (http.client and raw sockets as clients); the
counters move by exactly what the test did, labelled per listener."""
import http.client
import re
import socket

from conftest import DatagramClient, recv_until, run_evserved, wait_for

SAMPLE = re.compile(r'^(\w+)(?:\{(.*)\})? (\S+)$')


def scrape(daemon, path="/metrics", method="GET", version=None):
    """(status, headers, body) of one request to the metrics endpoint."""
    host, port = re.fullmatch(r"http://(.+):(\d+)/metrics", daemon.metrics_url).groups()
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    if version == "1.0":
        connection._http_vsn, connection._http_vsn_str = 10, "HTTP/1.0"
    connection.request(method, path)
    response = connection.getresponse()
    result = response.status, dict(response.getheaders()), response.read().decode()
    connection.close()
    return result


def samples(daemon):
    """{(name, frozenset of label pairs): value} of one scrape."""
    status, _, body = scrape(daemon)
    assert status == 200
    result = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        name, labels, value = SAMPLE.match(line).groups()
        pairs = frozenset(re.findall(r'(\w+)="([^"]*)"', labels or ""))
        result[(name, pairs)] = float(value)
    return result


def value(figures, name, listener, **labels):
    return figures.get((name, frozenset({("listener", listener), *labels.items()})), 0.0)


def metrics_daemon(daemon_factory, *args):
    return daemon_factory(*args, "--metrics-listen", "tcp://127.0.0.1:0")


def test_prints_the_metrics_line_after_the_listening_lines_and_answers_http(daemon_factory):
    daemon = metrics_daemon(daemon_factory, "--listen", "tcp://127.0.0.1:0", "--listen", "udp://127.0.0.1:0")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/metrics", daemon.metrics_url)
    status, headers, body = scrape(daemon)
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert f'evserved_connections_accepted_total{{listener="{daemon.urls[0]}"}} 0' in body
    assert f'evserved_datagrams_received_total{{listener="{daemon.urls[1]}"}} 0' in body
    assert scrape(daemon, version="1.0")[0] == 200
    assert scrape(daemon, method="HEAD")[0] == 200
    assert scrape(daemon, "/")[0] == 404
    assert scrape(daemon, "/metricsx")[0] == 404
    assert scrape(daemon, method="POST")[0] == 405
    host, port = re.fullmatch(r"http://(.+):(\d+)/metrics", daemon.metrics_url).groups()
    for garbage in [b"hello\r\n\r\n", b"GET /metrics HTTP/2.0\r\n\r\n", b"GET metrics HTTP/1.1\r\n\r\n"]:
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(garbage)
            assert recv_until(sock, lambda _: False).startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert daemon.stop() == 0


def test_counters_move_by_exactly_what_the_clients_did_per_listener(daemon_factory):
    daemon = metrics_daemon(daemon_factory, "--listen", "tcp://127.0.0.1:0", "--listen", "tcp://127.0.0.1:0")
    used, idle = daemon.urls
    before = samples(daemon)
    connections, size = 5, 3000
    for _ in range(connections):
        with daemon.connect(0) as sock:
            sock.sendall(b"y" * size)
            assert len(recv_until(sock, lambda data: len(data) >= size)) == size
    gone = lambda: value(samples(daemon), "evserved_connections_open", used) == 0  # noqa: E731
    assert wait_for(gone)
    after = samples(daemon)
    for name, expected in [
        ("evserved_connections_accepted_total", connections),
        ("evserved_bytes_received_total", connections * size),
        ("evserved_bytes_sent_total", connections * size),
    ]:
        assert value(after, name, used) - value(before, name, used) == expected, name
        assert value(after, name, idle) == value(before, name, idle) == 0, name
    with daemon.connect(0) as sock:  # an open connection shows in the gauge
        sock.sendall(b"z")
        assert sock.recv(1) == b"z"
        assert value(samples(daemon), "evserved_connections_open", used) == 1
    assert daemon.stop() == 0


def test_refusals_are_counted_with_their_reason(daemon_factory):
    daemon = metrics_daemon(
        daemon_factory, "--listen", "tcp://127.0.0.1:0", "--max-connections-per-client", "1",
        "--listen", "tcp://127.0.0.1:0?service=echo", "--deny", "10.0.0.0/8",
    )
    url = daemon.urls[0]
    with daemon.connect(0) as first:
        first.sendall(b"a")
        assert first.recv(1) == b"a"
        for _ in range(3):
            with daemon.connect(0) as extra:
                extra.settimeout(10)
                assert extra.recv(1) == b""  # closed at once
    figures = samples(daemon)
    assert value(figures, "evserved_connections_refused_total", url, reason="per-client-limit") == 3
    assert value(figures, "evserved_connections_refused_total", url, reason="denied") == 0
    assert value(figures, "evserved_connections_accepted_total", url) == 1
    assert daemon.stop() == 0


def test_denied_clients_are_counted(daemon_factory):
    daemon = metrics_daemon(daemon_factory, "--listen", "tcp://127.0.0.1:0", "--deny", "127.0.0.0/8")
    for _ in range(2):
        with daemon.connect() as sock:
            sock.settimeout(10)
            assert sock.recv(1) == b""
    figures = samples(daemon)
    assert value(figures, "evserved_connections_refused_total", daemon.urls[0], reason="denied") == 2
    assert value(figures, "evserved_connections_accepted_total", daemon.urls[0]) == 0
    assert daemon.stop() == 0


def test_the_connection_limit_pauses_accepting_and_is_counted(daemon_factory):
    daemon = metrics_daemon(daemon_factory, "--listen", "tcp://127.0.0.1:0", "--max-connections", "1")
    url = daemon.urls[0]
    with daemon.connect() as first:
        first.sendall(b"a")
        assert first.recv(1) == b"a"
        with daemon.connect() as waiting:  # waits in the backlog: not refused
            waiting.sendall(b"b")
            assert wait_for(lambda: value(samples(daemon), "evserved_intake_pauses_total", url, reason="limit") >= 1)
            first.close()
            waiting.settimeout(10)
            assert waiting.recv(1) == b"b"
    figures = samples(daemon)
    assert value(figures, "evserved_connections_accepted_total", url) == 2
    assert sum(v for (name, _), v in figures.items() if name == "evserved_connections_refused_total") == 0
    assert daemon.stop() == 0


def test_datagram_counters(daemon_factory):
    daemon = metrics_daemon(daemon_factory, "--listen", "udp://127.0.0.1:0", "--max-datagram-size", "100")
    url = daemon.urls[0]
    with DatagramClient(url) as client:
        for index in range(7):
            assert client.ask(b"d%d" % index) == b"d%d" % index
        for _ in range(2):
            client.send(b"x" * 500)  # over --max-datagram-size: dropped
        assert client.ask(b"last") == b"last"
    # Received datagrams are counted once per wake-up, after its replies: wait for the last one's count.
    assert wait_for(lambda: value(samples(daemon), "evserved_datagrams_received_total", url) >= 10)
    figures = samples(daemon)
    assert value(figures, "evserved_datagrams_received_total", url) == 10
    assert value(figures, "evserved_datagrams_dropped_total", url, reason="oversized") == 2
    assert value(figures, "evserved_datagrams_dropped_total", url, reason="rejected") == 0
    assert ("evserved_connections_accepted_total", frozenset({("listener", url)})) not in figures
    assert daemon.stop() == 0


def test_metrics_listen_is_refused_with_workers_and_bad_values():
    status, stderr = run_evserved(
        "--listen", "tcp://127.0.0.1:0", "--workers", "2", "--metrics-listen", "tcp://127.0.0.1:0"
    )
    assert status == 1 and "--metrics-listen cannot be used with --workers" in stderr
    assert len(stderr.strip().splitlines()) == 1
    for bad in ["udp://127.0.0.1:0", "unix:///tmp/x.sock", "127.0.0.1:9100", "tcp://127.0.0.1:99999"]:
        status, stderr = run_evserved("--listen", "tcp://127.0.0.1:0", "--metrics-listen", bad)
        assert status == 1 and stderr.startswith(f"evserved: error: invalid --metrics-listen '{bad}'"), stderr


def test_a_busy_metrics_port_is_a_clear_start_error(daemon_factory):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        status, stderr = run_evserved(
            "--listen", "tcp://127.0.0.1:0", "--metrics-listen", f"tcp://127.0.0.1:{port}"
        )
    assert status == 1 and stderr.startswith("evserved: error: --metrics-listen: ") and "in use" in stderr, stderr


def test_exec_children_gauge_counts_running_programs(daemon_factory):
    daemon = metrics_daemon(daemon_factory, "--listen", "tcp://127.0.0.1:0", "--exec", "/bin/cat")
    url = daemon.urls[0]
    children = lambda: value(samples(daemon), "evserved_exec_children", url)  # noqa: E731
    assert children() == 0
    with daemon.connect() as first, daemon.connect() as second:
        for sock in (first, second):
            sock.sendall(b"hi")
            assert recv_until(sock, lambda data: len(data) >= 2) == b"hi"  # cat runs for each
        assert children() == 2
    assert wait_for(lambda: children() == 0)  # each cat ends with its client's input, and is reaped
    assert daemon.stop() == 0
