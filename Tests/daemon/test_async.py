"""--mode async: thousands of connections on one loop thread, each handler straight-line code."""
import resource
import socket
import selectors
import time

from conftest import process_figures


def test_10000_concurrent_async_connections_on_one_loop_thread(daemon_factory):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    daemon = daemon_factory("--listen", "tcp://127.0.0.1:0", "--mode", "async", "--loops", "1",
                            "--service", "upper", "--backlog", "4096")
    host, port = daemon.urls[0][len("tcp://"):].rsplit(":", 1)
    threads_before = process_figures(daemon.process.pid)[0]
    sockets = []
    try:
        for _ in range(10_000):
            sockets.append(socket.create_connection((host, int(port)), timeout=10))
        for index, sock in enumerate(sockets):
            sock.sendall(b"client %d\n" % index)
        # Every handler is suspended in its read, or answering: the replies come back without a thread each.
        selector = selectors.DefaultSelector()
        pending = {}
        for index, sock in enumerate(sockets):
            sock.setblocking(False)
            pending[sock] = (b"CLIENT %d\n" % index, b"")
            selector.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=1):
                expected, got = pending[key.fileobj]
                got += key.fileobj.recv(100)
                if got == expected:
                    del pending[key.fileobj]
                    selector.unregister(key.fileobj)
                else:
                    pending[key.fileobj] = (expected, got)
        assert not pending, f"{len(pending)} connections unanswered"
        assert process_figures(daemon.process.pid)[0] == threads_before
    finally:
        for sock in sockets:
            sock.close()
    assert daemon.stop() == 0
