"""The Redis backplane's host-name lookups (--registry redis://NAME:PORT): they run off the loop, so a slow
resolver stalls no connection; every address of a name is tried in order; a name that does not resolve is
an outage like any other. Made-up names come from an LD_PRELOAD shim (fake_dns.c, compiled here into
.build/) whose getaddrinfo answers them without DNS and forwards every other name."""
import os
import shutil
import subprocess
import time

import pytest

from conftest import ROOT, Daemon, wait_for
from redis_server import REDIS, ChatClient, log_count, redis, wait_connected  # noqa: F401 (the fixture)

pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server is not installed (make deps installs it)")

SLOW_SECONDS = 3


@pytest.fixture(scope="module")
def fake_dns():
    """The shim's path (built from Tests/daemon/fake_dns.c with the system's C compiler)."""
    compiler = shutil.which("cc") or shutil.which("clang") or shutil.which("gcc")
    assert compiler, "no C compiler (cc) to build the getaddrinfo shim"
    output = os.path.join(ROOT, ".build", "fake_dns.so")
    os.makedirs(os.path.dirname(output), exist_ok=True)
    source = os.path.join(ROOT, "Tests", "daemon", "fake_dns.c")
    subprocess.run([compiler, "-shared", "-fPIC", "-o", output, source, "-ldl"], check=True)
    return output


@pytest.fixture
def daemons():
    started = []

    def start(redis_url, *flags, env=None):
        daemon = Daemon(
            "--listen", "tcp://127.0.0.1:0?service=chat", "--registry", redis_url, "--drain-timeout", "1", *flags,
            env=env,
        )
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


def preloaded(shim):
    return {**os.environ, "LD_PRELOAD": shim, "FAKE_DNS_SLOW_SECONDS": str(SLOW_SECONDS)}


def lines_cross(one, other, room):
    """A line sent on `one`'s daemon reaches a member on `other`'s, and back."""
    a, b = ChatClient(one.urls[0]), ChatClient(other.urls[0])
    a.join(room)
    b.join(room)
    a.send(f"to {room}")
    assert b.texts(1) == [f"to {room}"]
    b.send(f"back from {room}")
    assert a.texts(1) == [f"back from {room}"]


def test_a_name_for_redis_works(redis, daemons):
    named = daemons(f"redis://localhost:{redis.port}/test")
    numeric = daemons(redis.url)
    wait_connected(named)
    wait_connected(numeric)
    lines_cross(named, numeric, "by-name")


def test_every_address_of_a_name_is_tried_in_order(redis, daemons, fake_dns):
    # twofold.redis.test gives ::1 first; Redis listens on 127.0.0.1 only: ::1 is refused, 127.0.0.1 serves.
    named = daemons(f"redis://twofold.redis.test:{redis.port}/test", env=preloaded(fake_dns))
    numeric = daemons(redis.url)
    wait_connected(named)
    wait_connected(numeric)
    lines_cross(named, numeric, "twofold")
    log = named.stderr_text()
    assert "registry unreachable" not in log, "a refused first address is not an outage when the next serves"
    assert "drawn at random" not in log, "the node number comes from Redis at the second address too"


def test_a_slow_lookup_does_not_stall_the_loop(redis, daemons, fake_dns):
    slow = daemons(
        f"redis://slow.redis.test:{redis.port}/test", "--listen", "tcp://127.0.0.1:0?service=echo", "--loops", "1",
        env=preloaded(fake_dns),
    )
    listening = time.monotonic()
    chat, echo = ChatClient(slow.urls[0]), slow.connect(1)
    chat.join("slow")  # answered by the loop the backplane runs on
    echo.sendall(b"ping\n")
    assert echo.recv(16) == b"ping\n"
    served = time.monotonic() - listening
    assert "registry connected" not in slow.stderr_text(), "the lookup should still be sleeping"
    assert served < 1.0, f"a client waited {served:.2f} s: the loop waited for the lookup"

    numeric = daemons(redis.url)
    wait_connected(slow)  # once the lookup answers
    wait_connected(numeric)
    lines_cross(slow, numeric, "after-lookup")
    echo.close()


def test_every_reconnect_looks_the_name_up_again(redis, daemons, fake_dns, tmp_path):
    moving = tmp_path / "moving"
    moving.write_text("::1\n")  # Redis listens on 127.0.0.1 only: refused
    daemon = daemons(f"redis://moving.redis.test:{redis.port}/test",
                     env={**preloaded(fake_dns), "FAKE_DNS_MOVING_FILE": str(moving)})
    assert wait_for(lambda: log_count(daemon, "registry unreachable") == 1), daemon.stderr_text()
    moving.write_text("127.0.0.1\n")  # the name moves: the next retry's lookup finds Redis
    wait_connected(daemon)
    numeric = daemons(redis.url)
    wait_connected(numeric)
    lines_cross(daemon, numeric, "moved")


def test_a_name_without_address_is_an_outage_and_serving_goes_on(daemons, fake_dns):
    daemon = daemons("redis://missing.redis.test:6379/test", env=preloaded(fake_dns))
    assert wait_for(lambda: log_count(daemon, "registry unreachable") == 1), daemon.stderr_text()
    assert "cannot look up the Redis host 'missing.redis.test'" in daemon.stderr_text()
    one, two = ChatClient(daemon.urls[0]), ChatClient(daemon.urls[0])
    one.send("local works")
    assert two.texts(1) == ["local works"]


def test_stopping_while_a_lookup_runs_exits_cleanly(redis, daemons, fake_dns):
    daemon = daemons(f"redis://slow.redis.test:{redis.port}/test", env=preloaded(fake_dns))
    stopping = time.monotonic()
    assert daemon.stop() == 0, daemon.stderr_text()
    assert time.monotonic() - stopping < SLOW_SECONDS, "stopping waited for the lookup"
