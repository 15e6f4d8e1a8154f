"""evserved under a tight descriptor limit (`ulimit -n N`): it either starts and stops cleanly, or refuses
to start with one line naming the limit and exit status 1; never an abort, and never a Unix socket file left
behind (issue 12, item 2: libev's abort() when it could not create its async pipe)."""
import os
import resource
import select
import signal
import subprocess
import time

import pytest

from conftest import BINARY, TIMEOUT, short_unix_path


def limited(soft):
    def apply():
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return apply


def wait_for_listening_or_exit(process, lines):
    """True once `lines` listening lines were printed, False when the process exited first."""
    deadline = time.monotonic() + TIMEOUT
    seen = b""
    while seen.count(b"\n") < lines:
        remaining = deadline - time.monotonic()
        assert remaining > 0, "evserved neither listened nor exited in time"
        ready, _, _ = select.select([process.stdout], [], [], remaining)
        if ready:
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                return False
            seen += chunk
    return True


# Every limit from "not even the listening socket" to "enough": each start-up step runs out in turn (the
# listening sockets, each loop's epoll and eventfd, the drain at shutdown).
@pytest.mark.parametrize("mode", ["event", "thread"])
@pytest.mark.parametrize("limit", range(5, 25))
def test_out_of_descriptors_is_a_clear_error_and_leaves_nothing_behind(limit, mode):
    path = short_unix_path("fd")
    args = [BINARY, "--listen", "unix://" + path, "--listen", "tcp://127.0.0.1:0", "--loops", "2", "--mode", mode]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=limited(limit))
    try:
        started = wait_for_listening_or_exit(process, 2)
        if started:
            process.send_signal(signal.SIGTERM)
        status = process.wait(TIMEOUT)
        stderr = process.stderr.read().decode(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if started:
        assert status == 0, f"limit {limit}: status {status} at shutdown: {stderr}"
    else:
        lines = stderr.strip().splitlines()
        assert status == 1, f"limit {limit}: status {status}: {stderr}"
        assert len(lines) == 1, stderr
        assert f"limit {limit}" in lines[0] and "ulimit -n" in lines[0], lines[0]
    assert not os.path.exists(path), f"limit {limit}: the socket file was left behind"
