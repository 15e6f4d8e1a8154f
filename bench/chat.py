#!/usr/bin/env python3
"""Chat broadcast through the registry: one sender, RECEIVERS receivers in one room of the `chat` service.

Setups, interleaved round after round (medians printed):
  in-process        one evserved without --registry (the process's own registry)
  redis-local       one evserved with --registry: sender and receivers on it (local delivery + a PUBLISH each)
  redis-cross       two evserved sharing a Redis: the sender on one, the receivers on the other

Throughput: MESSAGES lines sent as fast as the slowest receiver allows (at most WINDOW ahead of it), timed
from the first send until every receiver has every line. Latency: lines paced at RATE per second, each
carrying its send time; p50 and p99 of sender -> receiver over every receiver. The clients are one Python
process (selectors); on a 2-core machine they share the cores with the servers and Redis, so compare the
setups with each other, not with other figures. CPU: user + system seconds of each evserved and of Redis over
the throughput phase (from /proc), per line delivered to a receiver: what the README's capacity table uses,
and what the machine's load moves least.
`make bench-chat` runs it (release build).
"""
import argparse
import os
import re
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINE = re.compile(rb"\[\d+\] (\d+) (\d+)\n")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_seconds(pid):
    """User + system CPU seconds of process `pid` so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(0.01)


class Server:
    def __init__(self, evserved, registry=None):
        args = [evserved, "--listen", "tcp://127.0.0.1:0?service=chat", "--loops", "1", "--drain-timeout", "0"]
        if registry:
            args += ["--registry", registry]
        self.stderr = open(os.devnull if not registry else "/tmp/evs-bench-chat.log", "a+b")
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.stderr)
        line = self.process.stdout.readline().decode()
        self.port = int(re.fullmatch(r"listening tcp://127\.0\.0\.1:(\d+)\n", line).group(1))

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(10)


def client(port, room="bench"):
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"/join {room}\n".encode())
    reply = b""
    while not reply.endswith(b"\n"):
        reply += sock.recv(100)
    assert reply == f"* joined {room}\n".encode(), reply
    sock.setblocking(False)
    return sock


def run(sender_port, receiver_port, receivers, messages, window, rate, pids):
    """One round: (messages per second, latencies in ms, CPU seconds of each of `pids` while the throughput
    phase ran)."""
    sender = client(sender_port)
    readers = [client(receiver_port) for _ in range(receivers)]
    # A probe until every receiver hears the sender: the path (and Redis's subscription) is ready.
    for probe in range(1000):
        sender.sendall(b"0 0\n")
        time.sleep(0.01)
        ready = 0
        for reader in readers:
            try:
                if reader.recv(1 << 20):
                    ready += 1
            except BlockingIOError:
                pass
        if ready == receivers:
            break
    time.sleep(0.1)
    for reader in readers:  # drain the probes
        try:
            while reader.recv(1 << 20):
                pass
        except BlockingIOError:
            pass
    before = [cpu_seconds(pid) for pid in pids]
    throughput = exchange(sender, readers, messages, window, None)[0]
    cpu = [cpu_seconds(pid) - start for pid, start in zip(pids, before)]
    latencies = exchange(sender, readers, int(rate * 2), window, rate)[1]
    for sock in [sender, *readers]:
        sock.close()
    return throughput, latencies, cpu


def exchange(sender, readers, messages, window, rate):
    selector = selectors.DefaultSelector()
    state = {reader: {"count": 0, "pending": b""} for reader in readers}
    for reader in readers:
        selector.register(reader, selectors.EVENT_READ)
    sent, outgoing, latencies = 0, b"", []
    start = time.monotonic()
    while min(s["count"] for s in state.values()) < messages:
        slowest = min(s["count"] for s in state.values())
        due = messages if rate is None else min(messages, int((time.monotonic() - start) * rate) + 1)
        while sent < min(due, slowest + window) and len(outgoing) < 65536:
            sent += 1
            outgoing += b"%d %d\n" % (sent, time.monotonic_ns())
        if outgoing:
            try:
                outgoing = outgoing[sender.send(outgoing):]
            except BlockingIOError:
                pass
        for key, _ in selector.select(0.001):
            reader_state = state[key.fileobj]
            data = reader_state["pending"] + key.fileobj.recv(1 << 20)
            now = time.monotonic_ns()
            end = data.rfind(b"\n") + 1
            for match in LINE.finditer(data, 0, end):
                reader_state["count"] += 1
                if rate is not None:
                    latencies.append((now - int(match.group(2))) / 1e6)
            reader_state["pending"] = data[end:]
    elapsed = time.monotonic() - start
    selector.close()
    return messages / elapsed, latencies


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--evserved", default=os.path.join(ROOT, ".build", "release", "evserved"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--receivers", type=int, default=4)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--window", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=1000, help="lines per second in the latency phase")
    args = parser.parse_args()
    redis_port = free_port()
    redis = subprocess.Popen([shutil.which("redis-server"), "--port", str(redis_port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    registry = f"redis://127.0.0.1:{redis_port}/bench"
    servers = []
    try:
        wait_until(lambda: subprocess.run(["redis-cli", "-p", str(redis_port), "ping"], capture_output=True)
                   .stdout.strip() == b"PONG")
        alone = Server(args.evserved)
        first, second = Server(args.evserved, registry), Server(args.evserved, registry)
        servers = [alone, first, second]
        setups = {"in-process": (alone.port, alone.port), "redis-local": (first.port, first.port),
                  "redis-cross": (first.port, second.port)}
        pids = [alone.process.pid, first.process.pid, second.process.pid, redis.pid]
        results = {name: [] for name in setups}
        for round_ in range(args.rounds):
            for name, (sender, receiver) in setups.items():
                rate, latencies, cpu = run(sender, receiver, args.receivers, args.messages, args.window, args.rate,
                                           pids)
                deliveries = args.messages * args.receivers
                per_line = [seconds / args.messages * 1e6 for seconds in cpu]
                results[name].append((rate, percentile(latencies, 0.5), percentile(latencies, 0.99),
                                      sum(cpu[:3]) / deliveries * 1e6, *per_line))
                print(f"round {round_ + 1} {name:12} {rate:9.0f} msg/s  p50 {results[name][-1][1]:6.2f} ms"
                      f"  p99 {results[name][-1][2]:6.2f} ms  CPU s: alone/first/second/redis "
                      + "/".join(f"{c:.2f}" for c in cpu), file=sys.stderr)
        print(f"\n{args.receivers} receivers, {args.messages} lines per throughput round, latency at "
              f"{args.rate:.0f} lines/s; medians of {args.rounds} rounds")
        print("CPU: us per delivery (all evserved), then us per line sent of each process: the one without "
              "--registry, the two sharing Redis (the sender's first), Redis")
        print(f"{'setup':14} {'lines/s sent':>13} {'deliveries/s':>13} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'us/delivery':>12} {'alone':>7} {'first':>7} {'second':>7} {'redis':>7}")
        for name, rows in results.items():
            median = [statistics.median(r[column] for r in rows) for column in range(8)]
            print(f"{name:14} {median[0]:13.0f} {median[0] * args.receivers:13.0f} {median[1]:8.2f} {median[2]:8.2f} "
                  f"{median[3]:12.2f} " + " ".join(f"{value:7.2f}" for value in median[4:]))
    finally:
        for server in servers:
            server.stop()
        redis.terminate()
        redis.wait(10)


if __name__ == "__main__":
    main()
