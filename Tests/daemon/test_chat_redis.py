"""The chat service across evserved instances through a real Redis (--registry): rooms, exactly-once
delivery to every other member wherever it is connected, and Redis going away and coming back."""
import re
import time

import pytest

from conftest import Daemon, free_port, run_evserved, wait_for
from redis_server import REDIS, ChatClient, Redis, log_count, redis, wait_connected  # noqa: F401 (the fixture)

pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server is not installed (make deps installs it)")


@pytest.fixture
def chat_daemons():
    started = []

    def start(redis_url, *flags):
        daemon = Daemon(
            "--listen", "tcp://127.0.0.1:0?service=chat", "--registry", redis_url, "--drain-timeout", "1", *flags
        )
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


def two_instances(redis, chat_daemons):
    """Two daemons on one Redis, the first with two workers, each process connected to Redis."""
    first = chat_daemons(redis.url, "--workers", "2")
    second = chat_daemons(redis.url)
    wait_connected(first, processes=2)
    wait_connected(second)
    return first, second


def test_every_line_reaches_every_other_member_once_across_instances(redis, chat_daemons):
    first, second = two_instances(redis, chat_daemons)
    clients = [ChatClient(first.urls[0]) for _ in range(4)] + [ChatClient(second.urls[0]) for _ in range(3)]
    for client in clients:
        client.join("room1")
    for round_ in range(10):
        for index, client in enumerate(clients):
            client.send(f"c{index}-m{round_}")
    for index, client in enumerate(clients):
        heard = client.texts(10 * (len(clients) - 1))
        assert not any(text.startswith(f"c{index}-") for text in heard), "the sender heard itself"
        for other in range(len(clients)):
            if other != index:  # each sender's lines exactly once, in order
                assert [t for t in heard if t.startswith(f"c{other}-")] == [f"c{other}-m{r}" for r in range(10)]
    assert all(client.hears_nothing() for client in clients)


@pytest.mark.parametrize("mode", ["async", "thread", "pool"])
def test_chat_in_other_modes_talks_across_instances(redis, chat_daemons, mode):
    event = chat_daemons(redis.url)
    other = chat_daemons(redis.url, "--mode", mode)
    wait_connected(event)
    wait_connected(other)
    clients = [ChatClient(daemon.urls[0]) for daemon in (event, event, other, other)]
    for client in clients:
        client.join("modes")
    for index, client in enumerate(clients):
        client.send(f"from {index}")
    for index, client in enumerate(clients):
        assert sorted(client.texts(3)) == [f"from {o}" for o in range(4) if o != index]
    assert all(client.hears_nothing() for client in clients)


def test_rooms_isolate_across_instances(redis, chat_daemons):
    first = chat_daemons(redis.url)
    second = chat_daemons(redis.url)
    wait_connected(first)
    wait_connected(second)
    red_a, red_b = ChatClient(first.urls[0]), ChatClient(second.urls[0])
    blue_a, blue_b = ChatClient(first.urls[0]), ChatClient(second.urls[0])
    lobby_b = ChatClient(second.urls[0])
    red_a.join("red")
    red_b.join("red")
    blue_a.join("blue")
    blue_b.join("blue")
    red_a.send("for red")
    blue_b.send("for blue")
    lobby_b.send("for the lobby")
    assert red_b.texts(1) == ["for red"] and blue_a.texts(1) == ["for blue"]
    assert all(c.hears_nothing() for c in (red_a, red_b, blue_a, blue_b, lobby_b))


def test_a_line_longer_than_max_line_is_refused(redis, chat_daemons):
    daemon = chat_daemons(redis.url, "--max-line", "16")
    client = ChatClient(daemon.urls[0])
    client.send("x" * 17)
    assert client.line() == "ERROR line longer than 16 bytes\r\n"
    assert client.sock.recv(1) == b""


def test_redis_outage_local_delivery_goes_on_and_cross_delivery_resumes(redis, chat_daemons):
    first = chat_daemons(redis.url)
    second = chat_daemons(redis.url)
    wait_connected(first)
    wait_connected(second)
    a1, a2, b1 = ChatClient(first.urls[0]), ChatClient(first.urls[0]), ChatClient(second.urls[0])
    for client in (a1, a2, b1):
        client.join("r")
    a1.send("before")
    assert a2.texts(1) == ["before"] and b1.texts(1) == ["before"]

    redis.stop()
    assert wait_for(lambda: log_count(first, "registry unreachable") == 1), first.stderr_text()
    for index in range(20):  # local delivery never stops
        a1.send(f"during-{index}")
        assert a2.texts(1) == [f"during-{index}"]
    assert b1.hears_nothing()

    restarted = time.monotonic()
    redis.start()
    wait_connected(first, times=2)
    wait_connected(second, times=2)
    assert time.monotonic() - restarted < 5, "cross-instance delivery took more than 5 s to resume"
    a1.send("after")
    assert a2.texts(1) == ["after"] and b1.texts(1) == ["after"]
    b1.send("back")
    assert a1.texts(1) == ["back"] and a2.texts(1) == ["back"]
    log = first.stderr_text()
    assert log.count("registry unreachable") == 1, "one warning per outage, however many retries"
    lost = [int(n) for n in re.findall(r"lost-during-outage=(\d+)", log)]
    assert lost == [0, 20], log


def test_redis_unreachable_at_start_serves_and_connects_later(chat_daemons):
    port = free_port()
    daemon = chat_daemons(f"redis://127.0.0.1:{port}/test")
    assert wait_for(lambda: log_count(daemon, "registry unreachable") == 1), daemon.stderr_text()
    one, two = ChatClient(daemon.urls[0]), ChatClient(daemon.urls[0])
    one.send("local works")
    assert two.texts(1) == ["local works"]
    late = Redis(port)
    try:
        wait_connected(daemon)
    finally:
        late.stop()


@pytest.mark.parametrize("args, expected", [
    (["--listen", "tcp://127.0.0.1:0?service=chat", "--workers", "2"], "would split the chat rooms"),
    (["--listen", "udp://127.0.0.1:0?service=chat"], "the chat service needs a stream listener"),
])
def test_chat_refuses_what_would_split_or_cannot_serve_it(args, expected):
    status, stderr = run_evserved(*args)
    assert status == 1 and len(stderr.splitlines()) == 1 and expected in stderr, stderr


def test_workers_without_registry_are_fine_for_other_services_and_one_worker(daemon_factory):
    daemon_factory("--listen", "tcp://127.0.0.1:0?service=echo", "--workers", "2")
    daemon_factory("--listen", "tcp://127.0.0.1:0?service=chat", "--workers", "1")


def test_node_numbers_come_from_redis_so_ids_never_collide_across_instances(redis, chat_daemons):
    first, second = two_instances(redis, chat_daemons)
    clients = [ChatClient(first.urls[0]) for _ in range(6)] + [ChatClient(second.urls[0]) for _ in range(2)]
    listener = ChatClient(second.urls[0])
    for client in clients + [listener]:
        client.join("ids")  # answered once the member is in the room: no line can miss it
    for client in clients:
        client.send(f"hello from {id(client)}")
    node_of = {text.split()[-1]: sender >> 44 for sender, text in listener.messages(len(clients))}
    # One node per process, numbered by Redis's counter in the order they started: the workers 1 and 2
    # (whichever took each client), then the second daemon 3.
    assert {node_of[str(id(client))] for client in clients[:6]} <= {1, 2}, node_of
    assert {node_of[str(id(client))] for client in clients[6:]} == {3}, node_of
