#!/usr/bin/env python3
"""`make cluster`: the chat across hosts, each host a network namespace on one bridge:

    lb       10.77.0.1  HAProxy, TCP mode, round robin over a (send-proxy) and b (send-proxy-v2), health checks
                        with check-send-proxy
    a        10.77.0.2  evserved --listen tcp://10.77.0.2:7000?service=chat --registry redis://10.77.0.4:6379/cluster
                                 --proxy-protocol --proxy-from 10.77.0.1/32 --log-connections
    b        10.77.0.3  the same on b
    redis    10.77.0.4  redis-server
    clients  10.77.0.5  the chat clients, each from an address of its own (10.77.0.20, .21, ...)

Clients connect through HAProxy (so they land on both daemons), join one room, and every line must reach every
other client exactly once and never its sender. The daemons must see the clients' own addresses (each
client's connection id, from the chat lines, is logged at close with its address and port), refuse a client
that skips HAProxy (it is not in --proxy-from), and log no warning or error (HAProxy's health checks included).
Needs root (ip netns). Everything it makes (namespaces, veth pairs, the bridge's namespace, processes) is
removed at the end, even on failure; every wait is bounded.
"""
import json
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
HOSTS = {"lb": "10.77.0.1", "a": "10.77.0.2", "b": "10.77.0.3", "redis": "10.77.0.4", "clients": "10.77.0.5"}
HUB = f"{TAG}-hub"
CLIENTS, LINES, TIMEOUT = 6, 5, 10
CLIENT_ADDRESSES = [f"10.77.0.{20 + index}" for index in range(CLIENTS)]


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
    for address in CLIENT_ADDRESSES:
        sh("ip", "netns", "exec", ns("clients"), "ip", "addr", "add", f"{address}/24", "dev", "eth0")


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


def client_main(host, port, skipped):
    """Runs inside the clients namespace: the chat check through HAProxy; prints {connection id: address}."""
    with socket.create_connection((skipped, port), timeout=TIMEOUT, source_address=(CLIENT_ADDRESSES[0], 0)) as sock:
        sock.sendall(b"/join cluster\n")
        assert sock.recv(100) == b"", "a daemon served a client that skipped HAProxy (not in --proxy-from)"
    clients = []
    for address in CLIENT_ADDRESSES:
        sock = socket.create_connection((host, port), timeout=TIMEOUT, source_address=(address, 0))
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
    ids = {}
    for index, client in enumerate(clients):
        heard = []
        for _ in range(LINES * (CLIENTS - 1)):
            match = re.fullmatch(r"\[(\d+)\] c(\d+)-(.*)", line(client))
            assert match, "not a chat line"
            ids[int(match.group(2))] = int(match.group(1))
            heard.append(f"c{match.group(2)}-{match.group(3)}")
        for other in range(CLIENTS):
            expected = [] if other == index else [f"c{other}-{n}" for n in range(LINES)]
            assert [t for t in heard if t.startswith(f"c{other}-")] == expected, (index, other, heard)
    nodes = {connection >> 44 for connection in ids.values()}  # the node number (ConnectionIDSpace)
    assert len(nodes) == 2, f"the clients should be spread over both daemons, saw nodes {nodes}"
    print(f"cluster: {CLIENTS} clients over 2 daemons, {CLIENTS * LINES} lines, each heard exactly once by "
          f"the {CLIENTS - 1} others")
    print(json.dumps({ids[index]: "%s:%d" % client[0].getsockname() for index, client in enumerate(clients)}))
    for client in clients:
        client[0].close()


def closed_connections(log_path):
    """{connection id: peer} from a daemon's `--log-connections` lines."""
    found = {}
    with open(log_path, errors="replace") as log:
        for line in log:
            connection, peer = re.search(r"connection\.id=(\d+)", line), re.search(r"peer=(\S+)", line)
            if "connection closed" in line and connection and peer:
                found[int(connection.group(1))] = peer.group(1)
    return found


def check_addresses(expected, logs):
    """Each client's connection was logged by one of the daemons with the client's own address."""
    def seen():
        return {key: value for log in logs.values() for key, value in closed_connections(log).items()}
    wait_for(lambda: expected.items() <= seen().items(), f"the daemons to log the clients' addresses {expected}")
    for host, log in logs.items():
        assert set(expected) & set(closed_connections(log)), f"{host} served none of the clients"
        with open(log, errors="replace") as text:
            problems = [line for line in text if re.search(r" (warning|error|critical) ", line)]
        assert not problems, f"{host} logged problems: {problems}"
    print(f"cluster: both daemons logged each client's own address ({', '.join(sorted(expected.values()))}), "
          "not HAProxy's, and no warning")


def haproxy_config(stats):
    return f"""global
    maxconn 256
    stats socket {stats} level admin
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
    server a {HOSTS['a']}:7000 send-proxy check check-send-proxy inter 200ms
    server b {HOSTS['b']}:7000 send-proxy-v2 check check-send-proxy inter 200ms
"""


def servers_up(stats):
    """Both of HAProxy's servers passed their health checks (its stats socket: a path, so any namespace)."""
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(TIMEOUT)
            sock.connect(stats)
            sock.sendall(b"show stat\n")
            text = b""
            while chunk := sock.recv(65536):
                text += chunk
    except OSError:
        return False
    return len(re.findall(rb"^daemons,[ab],(?:[^,]*,){15}UP,", text, re.MULTILINE)) == 2


def run_cluster(evserved, workdir, processes):
    """Starts Redis, the daemons and HAProxy, runs the clients; returns the exit status."""
    build_network()
    log = open(os.path.join(workdir, "processes.log"), "w+b")
    processes.append(start("redis", shutil.which("redis-server"), "--bind", HOSTS["redis"], "--port", "6379",
                           "--save", "", "--appendonly", "no", "--protected-mode", "no", log=log))
    registry = f"redis://{HOSTS['redis']}:6379/cluster"
    logs = {host: os.path.join(workdir, f"{host}.log") for host in ("a", "b")}
    for host, path in logs.items():
        processes.append(start(host, evserved, "--listen", f"tcp://{HOSTS[host]}:7000?service=chat",
                               "--registry", registry, "--drain-timeout", "1", "--proxy-protocol",
                               "--proxy-from", f"{HOSTS['lb']}/32", "--log-connections", log=open(path, "w+b")))
    for host, path in logs.items():
        wait_for(lambda: b"registry connected" in open(path, "rb").read(), f"{host} to reach Redis")
    config, stats = os.path.join(workdir, "haproxy.cfg"), os.path.join(workdir, "haproxy.sock")
    with open(config, "w") as file:
        file.write(haproxy_config(stats))
    processes.append(start("lb", shutil.which("haproxy"), "-db", "-f", config, log=log))
    wait_for(lambda: servers_up(stats), "HAProxy's health checks to pass on a and b")
    result = subprocess.run(["ip", "netns", "exec", ns("clients"), sys.executable, os.path.abspath(__file__),
                             "--client", HOSTS["lb"], "7000", HOSTS["a"]], capture_output=True, timeout=60)
    output = result.stdout.decode().splitlines()
    print("\n".join(output[:-1]))
    try:
        assert result.returncode == 0, result.stderr.decode()
        check_addresses({int(key): value for key, value in json.loads(output[-1]).items()}, logs)
    except AssertionError as failure:
        sys.stderr.write(f"cluster: FAILED: {failure}\n")
        for host, path in logs.items():
            sys.stderr.write(f"--- {host}.log\n" + open(path, errors="replace").read())
        return 1
    return 0


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--client":
        return client_main(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    evserved = os.environ.get("EVSERVED", os.path.join(ROOT, ".build", "debug", "evserved"))
    workdir = tempfile.mkdtemp(prefix="evs-cluster-")
    processes = []
    try:
        return run_cluster(evserved, workdir, processes)
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
