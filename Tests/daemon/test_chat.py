"""The chat example (Examples/Chat, async handlers + broadcast to a topic) with several real clients."""
import os
import re
import signal
import socket
import subprocess

from conftest import BINARY, TIMEOUT

CHAT = os.path.join(os.path.dirname(BINARY), "chat-example")


class Client:
    """A chat client as the tutorials write theirs: sendall, recv(1024). Several lines may arrive in one
    recv, so what follows the first newline waits for the next line()."""

    def __init__(self, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(("127.0.0.1", port))
        self.pending = b""

    def line(self):
        while b"\n" not in self.pending:
            data = self.sock.recv(1024)
            if not data:
                break
            self.pending += data
        line, newline, self.pending = self.pending.partition(b"\n")
        return (line + newline).decode()

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        self.sock.close()


def line(client):
    return client.line()


class Chat:
    def __init__(self):
        self.process = subprocess.Popen([CHAT, "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        url = self.process.stdout.readline().decode()
        self.port = int(re.fullmatch(r"listening tcp://127\.0\.0\.1:(\d+)\n", url).group(1))

    def join(self, name):
        client = Client(self.port)
        assert client.line() == "name?\n"
        client.send(name.encode() + b"\n")
        assert client.line() == f"welcome, {name}\n"
        return client

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(TIMEOUT)


def test_clients_message_each_other():
    chat = Chat()
    try:
        ada = chat.join("ada")
        bob = chat.join("bob")
        assert line(ada) == "* bob joined\n"
        cy = chat.join("cy")
        assert line(ada) == "* cy joined\n" and line(bob) == "* cy joined\n"
        ada.send(b"hello all\n")
        assert line(bob) == "ada: hello all\n" and line(cy) == "ada: hello all\n"
        for index in range(50):  # in order, nobody hears themselves
            bob.send(b"n%d\n" % index)
        for index in range(50):
            assert line(ada) == f"bob: n{index}\n" and line(cy) == f"bob: n{index}\n"
        cy.close()
        assert line(ada) == "* cy left\n" and line(bob) == "* cy left\n"
        ada.sock.settimeout(0.3)
        try:
            extra = ada.pending + ada.sock.recv(1024)
        except socket.timeout:
            extra = ada.pending
        assert extra == b"", "ada heard her own or a stray message"
    finally:
        assert chat.stop() == 0
