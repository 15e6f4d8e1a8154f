#!/usr/bin/env python3
"""Server-side instructions per round trip, counted by valgrind's callgrind (exact and repeatable on a
noisy machine): evserved in event, async, thread and pool mode (one loop) and the C libev reference, each
under callgrind while the load generator runs ping-pong on one connection, UDP in two regimes, then churn
(connect, one request, close: instructions per connection). UDP's cost per datagram depends on how many
datagrams a server finds per wake-up, so both regimes are counted, each the same for every server: `udp` is
one client with one datagram in flight that pauses 500 µs after each echo (so every server finds its socket
empty after a reply and sleeps in epoll_wait per datagram: the regime where "× C" compares like with like;
without the pause a server slowed by valgrind often finds the next datagram already there), `udp-drained` is
16 clients with one datagram each in flight and no pause (a server finds many datagrams per wake-up).
The `wake-ups` column (epoll_wait calls per request) shows the regime each really ran in.
Counting starts once the server listens
(`--instr-atstart=no` + `callgrind_control -i on`), so start-up is not in the figure.
Run after `make bench` (or `python3 bench/run.py --rounds 0`) has built everything. With --baseline PATH,
another evserved binary (e.g. an older commit's release build) is counted too, with the same arguments,
and the table gains its rows."""
import argparse
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import OUT, ROOT, Server, build  # noqa: E402

SECONDS = 3
# name: (loadgen workload, clients in flight, pause after each reply in µs, unit)
WORKLOADS = {
    "pingpong": ("pingpong", 1, 0, "round trip"),
    "udp": ("udp", 1, 500, "datagram"),
    "udp-drained": ("udp", 16, 0, "datagram"),
    "churn": ("churn", 1, 0, "connection"),
}


def count(name, command, workload):
    kind, parallel, gap, _ = WORKLOADS[workload]
    out_file = os.path.join(OUT, f"callgrind.{name}.{workload}.out")
    server = Server(command, wrapper=["valgrind", "--tool=callgrind", "--instr-atstart=no",
                                      f"--callgrind-out-file={out_file}"])
    try:
        subprocess.run(["callgrind_control", "-i", "on", str(server.process.pid)], check=True, capture_output=True)
        port = server.urls["udp" if kind == "udp" else "tcp"]
        client = subprocess.run([os.path.join(OUT, "loadgen"), kind, "127.0.0.1", str(port), str(parallel),
                                 str(SECONDS), str(gap)],
                                capture_output=True, text=True, check=True)
        requests = int(re.search(r'"all_requests": (\d+)', client.stdout).group(1))
        subprocess.run(["callgrind_control", "-i", "off", str(server.process.pid)], check=True, capture_output=True)
    finally:
        server.stop()
    with open(out_file) as data:
        text = data.read()
    instructions = int(re.search(r"^totals: (\d+)", text, re.MULTILINE).group(1))
    per = max(1, requests)
    return instructions / per, calls(text, "malloc") / per, calls(text, "epoll_wait") / per, requests


def without_debug_info(path, name):
    """A copy of the binary at `path` without its DWARF: valgrind 3.19 gives up on the DWARF 5 that clang
    writes for C targets of dependencies (swift-atomics, under swift-prometheus). Instructions are the same;
    callgrind still names functions from the symbol table."""
    copy = os.path.join(OUT, f"{name}.nodebug")
    subprocess.run(["strip", "--strip-debug", "-o", copy, path], check=True)
    return copy


def calls(text, function):
    """Calls of `function` in a callgrind profile: the `calls=` lines under each `cfn=` naming it."""
    names, total, callee = {}, 0, None
    for line in text.splitlines():
        match = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line)
        if match:
            number, name = match.groups()
            if name:
                names[number] = name
            callee = names.get(number) if line.startswith("cfn=") else None
        elif line.startswith("calls=") and callee == function:
            total += int(line.split("=", 1)[1].split()[0])
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", metavar="PATH",
                        help="also count this evserved binary (same arguments) in each evserved entry: NAME-baseline")
    parser.add_argument("--only", help="comma-separated evserved entries to count (the C reference always is)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help=f"comma-separated workloads to count (default: {','.join(WORKLOADS)})")
    args = parser.parse_args()
    build(swift=False)
    evserved = without_debug_info(os.path.join(ROOT, ".build", "release", "evserved"), "evserved")
    arguments = ["--listen", "tcp://127.0.0.1:0", "--listen", "udp://127.0.0.1:0", "--loops", "1", "--log-level", "error"]
    servers = {
        "c-libev": [os.path.join(OUT, "c-echo"), "0"],
        "evserved-event": [evserved, *arguments],
        "evserved-async": [evserved, *arguments, "--mode", "async"],
        "evserved-thread": [evserved, *arguments, "--mode", "thread"],
        "evserved-pool": [evserved, *arguments, "--mode", "pool", "--threads", "8", "--queue", "1024"],
        # The cost of recording metrics into a Prometheus registry (--metrics-listen; nobody scrapes it).
        "evserved-event-metrics": [evserved, *arguments, "--metrics-listen", "tcp://127.0.0.1:0"],
    }
    if args.baseline:
        old = without_debug_info(os.path.abspath(args.baseline), "baseline")
        for name, command in list(servers.items()):
            if name.startswith("evserved"):
                servers[f"{name}-baseline"] = [old, *command[1:]]
    if args.only:
        servers = {name: command for name, command in servers.items() if name in args.only.split(",") + ["c-libev"]}
    workloads = [workload for workload in args.workloads.split(",") if workload]
    unknown = [workload for workload in workloads if workload not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload {', '.join(unknown)}: choose from {', '.join(WORKLOADS)}")
    rows = {}
    for workload in workloads:
        unit = WORKLOADS[workload][3]
        for name, command in servers.items():
            per_request, mallocs, wakeups, requests = count(name, command, workload)
            rows[(workload, name)] = (per_request, mallocs, wakeups)
            print(f"{workload:11} {name:24} {per_request:10.0f} instructions, {mallocs:.3f} mallocs and "
                  f"{wakeups:.2f} wake-ups per {unit} ({requests})", flush=True)
    print()
    print("| workload | server | instructions | × C libev | mallocs | wake-ups |")
    print("|---|---|---:|---:|---:|---:|")
    for workload in workloads:
        c = rows[(workload, "c-libev")][0]
        for name in servers:
            instructions, mallocs, wakeups = rows[(workload, name)]
            print(f"| {workload} (per {WORKLOADS[workload][3]}) | {name} | {instructions:.0f} | "
                  f"{instructions / c:.2f} | {mallocs:.3f} | {wakeups:.2f} |")


if __name__ == "__main__":
    main()
