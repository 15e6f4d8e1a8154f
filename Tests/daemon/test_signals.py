"""Signals an operator sends by habit never end evserved uncleanly: SIGUSR1 logs each listener's figures,
SIGUSR2 and SIGALRM are logged and ignored, SIGQUIT stops gracefully like SIGTERM, SIGHUP reloads
(test_reload.py) and a worker ignores it (issue 14)."""
import os
import signal
import socket

import pytest

from conftest import wait_for, recv_until, tcp_address



def echo(address):
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(b"still here\n")
        return recv_until(sock, lambda d: d.endswith(b"\n"))


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]])
def test_sigusr1_logs_the_figures_of_every_listener_and_serving_goes_on(daemon_factory, workers):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--listen", "udp://127.0.0.1:0", *workers)
    address = tcp_address(daemon.urls[0])
    assert echo(address) == b"still here\n"
    daemon.process.send_signal(signal.SIGUSR1)
    assert wait_for(lambda: daemon.stderr_text().count("figures") >= (2 if not workers else 4)), "the figures lines"
    text = daemon.stderr_text()
    assert "connections-accepted=" in text and "datagrams-handled=" in text, text
    assert daemon.process.poll() is None
    assert echo(address) == b"still here\n"
    assert daemon.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGUSR2, signal.SIGALRM])
def test_habitual_signals_are_logged_and_ignored(daemon_factory, sig):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0")
    daemon.process.send_signal(sig)
    assert wait_for(lambda: f"{sig.name} ignored" in daemon.stderr_text()), f"{sig.name} to be logged"
    assert daemon.process.poll() is None
    assert echo(tcp_address(daemon.urls[0])) == b"still here\n"
    assert daemon.stop() == 0


def test_sigquit_stops_gracefully_like_sigterm(daemon_factory):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0")
    held = socket.create_connection(tcp_address(daemon.urls[0]), timeout=10)
    held.sendall(b"before\n")
    assert recv_until(held, lambda d: d.endswith(b"\n")) == b"before\n"
    daemon.process.send_signal(signal.SIGQUIT)
    assert wait_for(lambda: "shutting down" in daemon.stderr_text()), "the drain to start"
    held.sendall(b"during\n")  # open connections are served until they end
    assert recv_until(held, lambda d: d.endswith(b"during\n")) == b"during\n"
    held.close()
    assert daemon.process.wait(10) == 0
    assert "Fatal error" not in daemon.stderr_text() and "SIGQUIT" in daemon.stderr_text()


def test_a_worker_ignores_sighup_its_supervisor_replaces_the_workers(daemon_factory):
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--workers", "1")
    assert wait_for(lambda: worker_pids(daemon.process.pid)), "a worker"
    worker = worker_pids(daemon.process.pid)[0]
    os.kill(worker, signal.SIGHUP)
    assert wait_for(lambda: "SIGHUP ignored by a worker" in daemon.stderr_text()), daemon.stderr_text()
    assert worker_pids(daemon.process.pid) == [worker]
    assert echo(tcp_address(daemon.urls[0])) == b"still here\n"
    assert daemon.stop() == 0


def worker_pids(supervisor):
    with open(f"/proc/{supervisor}/task/{supervisor}/children") as children:
        return [int(pid) for pid in children.read().split()]
