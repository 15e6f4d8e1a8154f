"""--pid-file (issue 14): written once every listener serves, removed at exit, a live daemon's file refuses a
second start, a stale one is taken over."""
import os

import pytest

from conftest import run_evserved, short_unix_path


def pid_in(path):
    with open(path) as file:
        return int(file.read().strip())


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]])
def test_pid_file_names_the_daemon_while_it_serves_and_goes_at_exit(daemon_factory, workers):
    path = short_unix_path("evserved") + ".pid"
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--pid-file", path, *workers)
    assert pid_in(path) == daemon.process.pid, "written by the time the listening lines are out"
    status, stderr = run_evserved("--listen", "tcp://127.0.0.1:0", "--pid-file", path)
    assert status == 1 and f"already running with pid {daemon.process.pid}" in stderr, stderr
    assert pid_in(path) == daemon.process.pid, "the refused start left the file alone"
    assert daemon.stop() == 0
    assert not os.path.exists(path)


def test_a_stale_pid_file_is_taken_over(daemon_factory):
    path = short_unix_path("stale") + ".pid"
    with open(path, "w") as file:
        file.write("4194303\n")  # above the largest pid Linux hands out by default: nobody has it
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--pid-file", path)
    assert pid_in(path) == daemon.process.pid
    assert daemon.stop() == 0
    assert not os.path.exists(path)


def test_an_unwritable_pid_file_is_a_clear_error():
    status, stderr = run_evserved("--listen", "tcp://127.0.0.1:0", "--pid-file", "/nonexistent-dir/evserved.pid")
    assert status == 1 and "invalid --pid-file '/nonexistent-dir/evserved.pid'" in stderr, stderr
