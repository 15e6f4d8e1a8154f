"""Issue 15 end to end: the chat scaled out as the README's "Scaling out" describes it, with the real
programs. A redis-server on loopback; two evserved serving `chat` with `--registry` and the PROXY protocol,
one of them with `--workers 2`; HAProxy round-robins to both (`send-proxy` to one, `send-proxy-v2` to the
other, health checks with `check-send-proxy`). Clients bound to 127.0.0.2, .3, ... (HAProxy connects from
127.0.0.1) join one room through HAProxy."""
import re
import time

from conftest import wait_for
from haproxy import haproxy  # noqa: F401 (the fixture)
from redis_server import ChatClient, log_count, redis, wait_connected  # noqa: F401 (the fixture)

CLIENTS = 6
ROOM = "scale"
PROBLEM = re.compile(r" (warning|error|critical) ")


def chat_daemon(daemon_factory, redis_url, *flags):
    return daemon_factory(
        "--listen", "tcp://127.0.0.1:0?service=chat", "--registry", redis_url, "--proxy-protocol",
        "--proxy-from", "127.0.0.1/32", "--log-connections", "--log-level", "info", "--drain-timeout", "1", *flags,
    )


def exchange(clients, tag, rounds):
    """Every client sends `rounds` lines; each must reach every other client exactly once, in its sender's
    order, and never the sender. Returns each client's connection id as the others saw it."""
    for number in range(rounds):
        for index, client in enumerate(clients):
            client.send(f"{tag}-c{index}-{number}")
    ids = {}
    for index, client in enumerate(clients):
        heard = client.messages(rounds * (len(clients) - 1))
        for other in range(len(clients)):
            lines = [(sender, text) for sender, text in heard if text.startswith(f"{tag}-c{other}-")]
            expected = [] if other == index else [f"{tag}-c{other}-{n}" for n in range(rounds)]
            assert [text for _, text in lines] == expected, (index, other, heard)
            ids.update({other: sender for sender, _ in lines})
    assert all(client.hears_nothing() for client in clients), "a line came twice"
    return ids


def problems(*daemons):
    return [line for daemon in daemons for line in daemon.stderr_text().splitlines() if PROBLEM.search(line)]


def closed_connections(daemon):
    """{connection id: peer} from the daemon's `--log-connections` lines."""
    found = {}
    for line in daemon.stderr_text().splitlines():
        connection, peer = re.search(r"connection\.id=(\d+)", line), re.search(r"peer=(\S+)", line)
        if "connection closed" in line and connection and peer:
            found[int(connection.group(1))] = peer.group(1)
    return found


def test_chat_behind_haproxy_with_redis_across_instances_and_an_outage(daemon_factory, haproxy, redis):
    first = chat_daemon(daemon_factory, redis.url, "--workers", "2")
    second = chat_daemon(daemon_factory, redis.url)
    wait_connected(first, processes=2)
    wait_connected(second)
    proxy = haproxy({"chat": [(first.urls[0], "send-proxy"), (second.urls[0], "send-proxy-v2")]},
                    client_timeout="60s")
    assert wait_for(lambda: proxy.checked_up("chat", 0) and proxy.checked_up("chat", 1)), proxy.log_text()
    # Health checks reached both daemons (served with HAProxy's own address, 127.0.0.1) and logged no problem.
    for daemon in (first, second):
        assert wait_for(lambda: daemon.stderr_text().count("peer=127.0.0.1:") >= 3), daemon.stderr_text()

    clients = [ChatClient(proxy.url("chat"), source=f"127.0.0.{2 + index}") for index in range(CLIENTS)]
    addresses = ["%s:%d" % client.sock.getsockname() for client in clients]
    for client in clients:
        client.join(ROOM)
    ids = exchange(clients, "before", rounds=10)
    assert problems(first, second) == [], "health checks or clients caused warnings"

    # Which clients share a process: the node number in the top bits of the connection id (ConnectionIDSpace).
    nodes = {}
    for index, connection in ids.items():
        nodes.setdefault(connection >> 44, []).append(index)
    assert len(nodes) >= 2, f"round robin should spread the clients over both daemons: {nodes}"
    redis_outage(first, second, redis, clients, nodes)

    for client in clients:
        client.close()
    # The daemons saw each client's own address, not HAProxy's: the connection id its lines carried is
    # logged at close with peer=127.0.0.N:PORT, the client's side of its connection to HAProxy.
    expected = {ids[index]: addresses[index] for index in range(CLIENTS)}
    assert wait_for(lambda: expected.items() <= {**closed_connections(first), **closed_connections(second)}.items()), (
        expected, closed_connections(first), closed_connections(second))
    served = [set(expected) & set(closed_connections(daemon)) for daemon in (first, second)]
    assert all(served), f"both daemons served clients: {served}"


def redis_outage(first, second, redis, clients, nodes):
    """Redis stopped: local delivery goes on (clients on the same process), nothing crosses; Redis started
    again: cross-instance delivery resumes, exactly once, within 5 s."""
    redis.stop()
    assert wait_for(lambda: log_count(first, "registry unreachable") == 2), first.stderr_text()
    assert wait_for(lambda: log_count(second, "registry unreachable") == 1), second.stderr_text()
    groups = [members for members in nodes.values() if len(members) >= 2]
    assert groups, f"some process serves two clients (round robin gives the second daemon three): {nodes}"
    for number in range(10):
        for members in groups:
            clients[members[0]].send(f"during-{number}")
        for members in groups:
            for index in members[1:]:
                assert clients[index].texts(1) == [f"during-{number}"], "local delivery stopped"
    assert all(client.hears_nothing() for client in clients), "a line crossed processes without Redis"

    restarted = time.monotonic()
    redis.start()
    wait_connected(first, processes=2, times=2)
    wait_connected(second, times=2)
    exchange(clients, "after", rounds=2)
    elapsed = time.monotonic() - restarted
    assert elapsed < 5, f"cross-instance delivery resumed {elapsed:.1f} s after Redis came back"
