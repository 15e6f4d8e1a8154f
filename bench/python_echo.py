"""What our users come from: Python's socketserver.ThreadingTCPServer (a thread per client) echoing TCP,
and ThreadingUDPServer echoing datagrams on the same port. Prints 'listening tcp://127.0.0.1:PORT'."""
import socketserver
import sys
import threading


class EchoStream(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            self.request.sendall(data)


class EchoDatagram(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        sock.sendto(data, self.client_address)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 4096


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    tcp = Server(("127.0.0.1", port), EchoStream)
    bound = tcp.server_address[1]
    udp = socketserver.ThreadingUDPServer(("127.0.0.1", bound), EchoDatagram)
    udp.daemon_threads = True
    threading.Thread(target=udp.serve_forever, daemon=True).start()
    print(f"listening tcp://127.0.0.1:{bound}\nlistening udp://127.0.0.1:{bound}", flush=True)
    tcp.serve_forever()
