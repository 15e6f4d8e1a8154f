"""The chat example (Examples/Chat, async handlers + broadcast to a topic) with several real clients."""
import os
import re
import signal
import socket
import subprocess

from conftest import BINARY, TIMEOUT

CHAT = os.path.join(os.path.dirname(BINARY), "chat-example")


class Client:
    """A chat client reading whole lines (several may arrive in one segment)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.reader = self.sock.makefile("rb")

    def line(self):
        return self.reader.readline().decode()

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        self.reader.close()
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
            extra = ada.sock.recv(100)
        except socket.timeout:
            extra = b""
        assert extra == b"", "ada heard her own or a stray message"
    finally:
        assert chat.stop() == 0
