#!/usr/bin/env python3
"""`make cluster`: the chat across hosts, each host a network namespace on one bridge:

    lb     10.77.0.1  HAProxy, TCP mode, round robin over a and b (the clients run here too)
    a      10.77.0.2  evserved --listen tcp://10.77.0.2:7000?service=chat --registry redis://10.77.0.4:6379/cluster
    b      10.77.0.3  the same on b
    redis  10.77.0.4  redis-server

Clients connect through HAProxy (so they land on both daemons), join one room, and every line must reach every
other client exactly once and never its sender. Needs root (ip netns). Everything it makes (namespaces, veth
pairs, the bridge's namespace, processes) is removed at the end, even on failure; every wait is bounded.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TAG = f"evs{os.getpid() % 100000}"
HOSTS = {"lb": "10.77.0.1", "a": "10.77.0.2", "b": "10.77.0.3", "redis": "10.77.0.4"}
HUB = f"{TAG}-hub"
CLIENTS, LINES, TIMEOUT = 6, 5, 10


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, timeout=TIMEOUT)


def ns(host):
    return f"{TAG}-{host}"


def build_network():
    sh("ip", "netns", "add", HUB)
    sh("ip", "netns", "exec", HUB, "ip", "link", "add", "br0", "type", "bridge")
    sh("ip", "netns", "exec", HUB, "ip", "link", "set", "br0", "up")
    for index, (host, address) in enumerate(HOSTS.items()):
        sh("ip", "netns", "add", ns(host))
        sh("ip", "netns", "exec", ns(host), "ip", "link", "set", "lo", "up")
        peer = f"v{index}"
        sh("ip", "netns", "exec", HUB, "ip", "link", "add", peer, "type", "veth", "peer", "name", "eth0",
           "netns", ns(host))
        sh("ip", "netns", "exec", HUB, "ip", "link", "set", peer, "master", "br0", "up")
        sh("ip", "netns", "exec", ns(host), "ip", "addr", "add", f"{address}/24", "dev", "eth0")
        sh("ip", "netns", "exec", ns(host), "ip", "link", "set", "eth0", "up")


def remove_network():
    for name in [ns(host) for host in HOSTS] + [HUB]:
        sh("ip", "netns", "del", name, check=False)  # deleting a namespace removes its veth ends


def start(host, *command, log):
    return subprocess.Popen(["ip", "netns", "exec", ns(host), *command], stdout=log, stderr=log)


def wait_for(predicate, what):
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def client_main(host, port):
    """Runs inside the lb namespace: the chat check through HAProxy."""
    clients = []
    for _ in range(CLIENTS):
        sock = socket.create_connection((host, port), timeout=TIMEOUT)
        sock.sendall(b"/join cluster\n")
        clients.append([sock, b""])

    def line(client):
        while b"\n" not in client[1]:
            data = client[0].recv(65536)
            assert data, "a daemon closed a client"
            client[1] += data
        text, _, client[1] = client[1].partition(b"\n")
        return text.decode()

    for client in clients:
        assert line(client) == "* joined cluster"
    for number in range(LINES):
        for index, client in enumerate(clients):
            client[0].sendall(f"c{index}-{number}\n".encode())
    nodes = set()
    for index, client in enumerate(clients):
        heard = []
        for _ in range(LINES * (CLIENTS - 1)):
            match = re.fullmatch(r"\[(\d+)\] (.*)", line(client))
            assert match, "not a chat line"
            nodes.add(int(match.group(1)) >> 44)  # the node number (ConnectionIDSpace)
            heard.append(match.group(2))
        for other in range(CLIENTS):
            expected = [] if other == index else [f"c{other}-{n}" for n in range(LINES)]
            assert [t for t in heard if t.startswith(f"c{other}-")] == expected, (index, other, heard)
    assert len(nodes) == 2, f"the clients should be spread over both daemons, saw nodes {nodes}"
    print(f"cluster: {CLIENTS} clients over 2 daemons, {CLIENTS * LINES} lines, each heard exactly once by "
          f"the {CLIENTS - 1} others")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--client":
        return client_main(sys.argv[2], int(sys.argv[3]))
    evserved = os.environ.get("EVSERVED", os.path.join(ROOT, ".build", "debug", "evserved"))
    workdir = tempfile.mkdtemp(prefix="evs-cluster-")
    processes = []
    try:
        build_network()
        log = open(os.path.join(workdir, "processes.log"), "w+b")
        processes.append(start("redis", shutil.which("redis-server"), "--bind", HOSTS["redis"], "--port", "6379",
                               "--save", "", "--appendonly", "no", "--protected-mode", "no", log=log))
        registry = f"redis://{HOSTS['redis']}:6379/cluster"
        daemons = {}
        for host in ("a", "b"):
            daemon_log = open(os.path.join(workdir, f"{host}.log"), "w+b")
            processes.append(start(host, evserved, "--listen", f"tcp://{HOSTS[host]}:7000?service=chat",
                                   "--registry", registry, "--drain-timeout", "1", log=daemon_log))
            daemons[host] = daemon_log
        for host, daemon_log in daemons.items():
            wait_for(lambda: b"registry connected" in open(daemon_log.name, "rb").read(), f"{host} to reach Redis")
        config = os.path.join(workdir, "haproxy.cfg")
        with open(config, "w") as file:
            file.write(f"""global
    maxconn 256
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend chat
    bind {HOSTS['lb']}:7000
    default_backend daemons
backend daemons
    balance roundrobin
    server a {HOSTS['a']}:7000
    server b {HOSTS['b']}:7000
""")
        processes.append(start("lb", shutil.which("haproxy"), "-db", "-f", config, log=log))
        wait_for(lambda: sh("ip", "netns", "exec", ns("lb"), "ss", "-ltn", check=False).stdout.find(
            f"{HOSTS['lb']}:7000".encode()) >= 0, "HAProxy to listen")
        result = subprocess.run(["ip", "netns", "exec", ns("lb"), sys.executable, os.path.abspath(__file__),
                                 "--client", HOSTS["lb"], "7000"], capture_output=True, timeout=60)
        sys.stdout.write(result.stdout.decode())
        if result.returncode != 0:
            sys.stderr.write(result.stderr.decode())
            for host in daemons:
                sys.stderr.write(f"--- {host}.log\n" + open(os.path.join(workdir, f"{host}.log")).read())
            return 1
        return 0
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        remove_network()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
