#!/usr/bin/env python3
"""The two figures the README's capacity table needs beside `make bench` and `make bench-chat`:

  memory   what one idle TCP connection costs the host: evserved's resident memory (as the idle-10000
           workload measures it) and the kernel's (slab: socket, inode, file, epoll item), for N connections
           held open to `evserved --loops 1 --service echo` (each answered once, to prove it is alive).
           Clients and server share the machine, so the kernel figure counts both ends: the server's share
           is about half (both ends hold a TCP socket, an inode and a file; only the server an epoll item).
  redis    what one PUBLISH costs Redis with K pattern subscribers (the Redis backplane: one PSUBSCRIBE
           PREFIX:t:* per evserved process, so K = the number of processes): redis-benchmark publishes
           64-byte messages, one Python thread drains the K subscriber connections; Redis's CPU seconds
           (from /proc) per PUBLISH and per message it delivers to a subscriber.

`make bench-chat` runs it after bench/chat.py. The machine is shared: each figure is the median of ROUNDS.
"""
import argparse
import os
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def meminfo_kib(*keys):
    with open("/proc/meminfo") as info:
        values = dict(re.findall(r"(\w+):\s+(\d+) kB", info.read()))
    return sum(int(values[key]) for key in keys)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        return int(re.search(r"VmRSS:\s+(\d+)", status.read()).group(1))


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def idle_memory(evserved, count):
    """(evserved KiB per connection, kernel slab KiB per connection pair) for `count` idle connections."""
    server = subprocess.Popen([evserved, "--listen", "tcp://127.0.0.1:0?service=echo", "--loops", "1",
                               "--backlog", "4096"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    port = int(server.stdout.readline().decode().rsplit(":", 1)[1])
    sockets = []
    try:
        rss, slab = rss_kib(server.pid), meminfo_kib("Slab")
        for _ in range(count):
            sockets.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        for sock in sockets:  # each answered once: it is served, not just queued
            sock.sendall(b"x")
        for sock in sockets:
            assert sock.recv(1) == b"x"
        return (rss_kib(server.pid) - rss) / count, (meminfo_kib("Slab") - slab) / count
    finally:
        for sock in sockets:
            sock.close()
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def drain(connections, stop):
    selector = selectors.DefaultSelector()
    for connection in connections:
        selector.register(connection, selectors.EVENT_READ)
    while not stop.is_set():
        for key, _ in selector.select(0.1):
            key.fileobj.recv(1 << 20)
    selector.close()


def redis_publish_cost(port, pid, subscribers, messages):
    """(PUBLISH/s, Redis CPU us per PUBLISH) with `subscribers` pattern subscriptions draining."""
    connections = []
    for _ in range(subscribers):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"PSUBSCRIBE bench:t:*\r\n")
        assert b"psubscribe" in sock.recv(1000)
        connections.append(sock)
    stop = threading.Event()
    drainer = threading.Thread(target=drain, args=(connections, stop))
    drainer.start()
    try:
        before = cpu_seconds(pid)
        output = subprocess.run(["redis-benchmark", "-p", str(port), "-q", "-n", str(messages), "-c", "20",
                                 "-P", "32", "PUBLISH", "bench:t:room", "x" * 64],
                                capture_output=True, text=True, check=True).stdout
        cpu = cpu_seconds(pid) - before
    finally:
        stop.set()
        drainer.join()
        for sock in connections:
            sock.close()
    rate = float(re.findall(r"([\d.]+) requests per second", output)[-1])
    return rate, cpu / messages * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--evserved", default=os.path.join(ROOT, ".build", "release", "evserved"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--messages", type=int, default=1000000)
    parser.add_argument("--subscribers", default="0,1,2,4,8,16")
    parser.add_argument("--only", choices=["memory", "redis"], help="one of the two measurements")
    args = parser.parse_args()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the clients' and (inherited) the server's

    if args.only != "redis":
        memory = [idle_memory(args.evserved, args.connections) for _ in range(args.rounds)]
        print(f"idle connections ({args.connections}, medians of {args.rounds}): evserved "
              f"{statistics.median(m[0] for m in memory):.2f} KiB per connection, kernel slab "
              f"{statistics.median(m[1] for m in memory):.2f} KiB per connection pair (rounds: "
              + ", ".join(f"{m[0]:.2f}/{m[1]:.2f}" for m in memory) + ")")
    if args.only != "memory":
        redis_costs(args)


def redis_costs(args):
    port = free_port()
    redis = subprocess.Popen([shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--client-output-buffer-limit", "pubsub 0 0 0"],
                             stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() != b"PONG":
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        print(f"\nRedis {args.messages} PUBLISH of 64 bytes (redis-benchmark -c 20 -P 32), medians of {args.rounds}")
        print(f"{'pattern subscribers':>20} {'PUBLISH/s':>10} {'Redis CPU us/PUBLISH':>21} {'us/delivery':>12}")
        for count in (int(n) for n in args.subscribers.split(",")):
            runs = [redis_publish_cost(port, redis.pid, count, args.messages) for _ in range(args.rounds)]
            cost = statistics.median(r[1] for r in runs)
            per_delivery = f"{cost / count:12.3f}" if count else f"{'-':>12}"
            print(f"{count:20} {statistics.median(r[0] for r in runs):10.0f} {cost:21.3f} {per_delivery}")
    finally:
        redis.terminate()
        redis.wait(10)


if __name__ == "__main__":
    main()
