#!/usr/bin/env python3
"""The benchmark: builds everything in release mode, then runs each workload against each server, side by
side and interleaved (round after round, the server order rotating), and prints medians and ratios to the
C libev reference measured in the same run. `make bench` runs it; see BENCHMARKS.md for how to read it.

Servers: evserved in event, async, thread and pool mode (sync serves one client at a time by design: not a peer
here), the C libev echo (bench/c-echo), SwiftNIO (bench/nio-echo), Python's ThreadingTCPServer; with
--baseline PATH, the evserved entries again run by another evserved binary (NAME-baseline), to compare an
older build with this one in the same interleaved run.
Workloads (bench/loadgen): ping-pong at 1, 50 and 500 connections, churn at 50, UDP with 50 in flight, and
10 000 idle connections (memory per connection; only for servers that hold connections without a thread).
"""
import argparse
import json
import os
import platform
import re
import resource
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
OUT = os.path.join(ROOT, ".build-bench")
TICKS = os.sysconf("SC_CLK_TCK")


def build(swift=True):
    os.makedirs(OUT, exist_ok=True)
    if swift:
        subprocess.run(["swift", "build", "-c", "release", "--product", "evserved"], cwd=ROOT, check=True)
        subprocess.run(["swift", "build", "-c", "release", "--scratch-path", os.path.join(OUT, "nio")],
                       cwd=os.path.join(BENCH, "nio-echo"), check=True)
    for name, source, libs in [("loadgen", "loadgen/loadgen.c", []), ("c-echo", "c-echo/echo.c", ["-lev"])]:
        subprocess.run(["gcc", "-O2", "-Wall", "-o", os.path.join(OUT, name), os.path.join(BENCH, source), *libs],
                       check=True)


def servers(loops, baseline=None):
    evserved = os.path.join(ROOT, ".build", "release", "evserved")
    # One loop, as the C reference and the NIO server have; --loops N is its own entry.
    listen = ["--listen", "tcp://127.0.0.1:0", "--listen", "udp://127.0.0.1:0", "--loops", "1"]
    table = {
        "c-libev": [os.path.join(OUT, "c-echo"), "0"],
        "evserved-event": [evserved, *listen, "--mode", "event", "--log-level", "error"],
        "evserved-thread": [evserved, *listen, "--mode", "thread", "--log-level", "error"],
        "evserved-async": [evserved, *listen, "--mode", "async", "--log-level", "error"],
        "evserved-pool": [evserved, *listen, "--mode", "pool", "--threads", "8", "--queue", "1024", "--log-level", "error"],
        "swift-nio": [os.path.join(OUT, "nio", "release", "nio-echo"), "0"],
        "python-threading": [sys.executable, os.path.join(BENCH, "python_echo.py"), "0"],
    }
    if loops > 1:
        table[f"evserved-event-{loops}loops"] = [evserved, *listen[:-1], str(loops), "--mode", "event",
                                                 "--log-level", "error"]
    if baseline:
        # Every evserved entry again, same arguments, run by another binary (e.g. an older commit's build).
        table.update({f"{name}-baseline": [baseline, *command[1:]] for name, command in list(table.items())
                      if command[0] == evserved})
    return table


WORKLOADS = [
    ("pingpong-1", ["pingpong", 1]),
    ("pingpong-50", ["pingpong", 50]),
    ("pingpong-500", ["pingpong", 500]),
    ("churn-50", ["churn", 50]),
    ("udp-50", ["udp", 50]),
    ("idle-10000", ["idle", 10000]),
]
# Servers that need a thread per connection cannot hold 10 000 idle connections on this machine's limits,
# or (pool) serve more connections at once than they have threads.
IDLE_SERVERS = {"c-libev", "evserved-event", "evserved-async", "swift-nio", "python-threading"}


def raise_descriptor_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Server:
    def __init__(self, command, wrapper=()):
        self.process = subprocess.Popen([*wrapper, *command], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        preexec_fn=raise_descriptor_limit, text=True)
        self.urls = {}
        deadline = time.monotonic() + 60
        while len(self.urls) < 2:
            line = self.process.stdout.readline()
            if not line or time.monotonic() > deadline:
                raise RuntimeError(f"{command[0]} did not start")
            match = re.match(r"listening (tcp|udp)://127\.0\.0\.1:(\d+)", line)
            if match:
                self.urls[match.group(1)] = int(match.group(2))

    def cpu(self):
        """User + system seconds of the server and its threads so far."""
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS

    def rss_kib(self):
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def measure(server, workload, parallel, seconds):
    loadgen = os.path.join(OUT, "loadgen")
    port = server.urls["udp" if workload == "udp" else "tcp"]
    if workload == "idle":
        baseline = server.rss_kib()
        client = subprocess.Popen([loadgen, "idle", "127.0.0.1", str(port), str(parallel)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, preexec_fn=raise_descriptor_limit)
        held = int(client.stdout.readline().split()[1])
        time.sleep(1)
        grown = server.rss_kib() - baseline
        client.stdin.write("go\n")
        client.stdin.flush()
        result = json.loads(client.stdout.readline())
        client.wait()
        result.update(held=held, kib_per_connection=grown / max(1, held))
        return result
    client = subprocess.Popen([loadgen, workload, "127.0.0.1", str(port), str(parallel), str(seconds)],
                              stdout=subprocess.PIPE, text=True, preexec_fn=raise_descriptor_limit)
    assert client.stdout.readline().strip() == "measuring"
    cpu_before, time_before = server.cpu(), time.monotonic()
    result = json.loads(client.stdout.readline())
    cpu_after, time_after = server.cpu(), time.monotonic()
    client.wait()
    server_cpu = cpu_after - cpu_before
    # The server's CPU over the measured window (the sampling adds a few ms either side).
    result.update(server_cpu=server_cpu, rate_per_cpu=result["requests"] / server_cpu if server_cpu > 0 else 0.0,
                  window=time_after - time_before)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--only", help="comma-separated server names")
    parser.add_argument("--workloads", help="comma-separated workload names")
    parser.add_argument("--loops", type=int, default=os.cpu_count(),
                        help="also run evserved event mode with --loops N (default: the number of cores; 1: skip)")
    parser.add_argument("--baseline", metavar="PATH",
                        help="also run this evserved binary (e.g. an older commit's release build) with the same "
                             "arguments as every evserved entry, named NAME-baseline, interleaved with the rest")
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--output", default=os.path.join(OUT, "results.json"))
    parser.add_argument("--charts", metavar="DIR",
                        help="also draw the SVG charts of this run into DIR (make bench: bench/charts)")
    args = parser.parse_args()
    if args.baseline and not os.access(args.baseline, os.X_OK):
        parser.error(f"--baseline {args.baseline}: not an executable")
    build(swift=not args.no_build)
    table = servers(args.loops, args.baseline and os.path.abspath(args.baseline))
    if args.only:
        table = {name: table[name] for name in args.only.split(",")}
    workloads = [w for w in WORKLOADS if not args.workloads or w[0] in args.workloads.split(",")]
    results = {}  # (workload, server) -> [result per round]
    names = list(table)
    for round_number in range(args.rounds):
        for workload_name, (workload, parallel) in workloads:
            order = names[round_number % len(names):] + names[:round_number % len(names)]
            for name in order:
                if workload == "idle" and name.removesuffix("-baseline") not in IDLE_SERVERS:
                    continue
                server = Server(table[name])
                try:
                    result = measure(server, workload, parallel, args.seconds)
                finally:
                    server.stop()
                results.setdefault((workload_name, name), []).append(result)
                print(f"round {round_number + 1} {workload_name:13} {name:22} "
                      + (f"{result['kib_per_connection']:.2f} KiB/conn held {result['held']} errors {result['errors']}"
                         if workload == "idle" else
                         f"{result['rate']:>10.0f}/s  {result['rate_per_cpu']:>10.0f}/cpu-s  p99 {result['p99_us']} us"
                         f"  errors {result['errors']}  loadgen cpu {result['generator_cpu']:.2f}s"), flush=True)
                time.sleep(0.5)
    report(results, workloads, names, args)


def median(results, key):
    return statistics.median(r[key] for r in results)


def report(results, workloads, names, args):
    lines = [f"Run {time.strftime('%Y-%m-%d %H:%M')} on {platform.node()} ({os.cpu_count()} cores, "
             f"{platform.machine()}), {args.rounds} interleaved rounds of {args.seconds:g} s; medians.", ""]
    for workload_name, (workload, _) in workloads:
        reference = results.get((workload_name, "c-libev"))
        if workload == "idle":
            lines += [f"### {workload_name}", "", "| server | KiB per connection | held | errors |", "|---|---:|---:|---:|"]
            for name in names:
                runs = results.get((workload_name, name))
                if runs:
                    lines.append(f"| {name} | {median(runs, 'kib_per_connection'):.2f} | {median(runs, 'held'):.0f} | "
                                 f"{median(runs, 'errors'):.0f} |")
            lines.append("")
            continue
        lines += [f"### {workload_name}", "",
                  "| server | requests/s | × C | per server CPU-s | × C | p50 µs | p99 µs | p999 µs | errors | loadgen CPU |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name in names:
            runs = results.get((workload_name, name))
            if not runs:
                continue
            rate, per_cpu = median(runs, "rate"), median(runs, "rate_per_cpu")
            ratio = rate / median(reference, "rate") if reference else float("nan")
            cpu_ratio = per_cpu / median(reference, "rate_per_cpu") if reference else float("nan")
            lines.append(f"| {name} | {rate:.0f} | {ratio:.2f} | {per_cpu:.0f} | {cpu_ratio:.2f} | "
                         f"{median(runs, 'p50_us'):.0f} | {median(runs, 'p99_us'):.0f} | {median(runs, 'p999_us'):.0f} | "
                         f"{median(runs, 'errors'):.0f} | {median(runs, 'generator_cpu') / args.seconds:.0%} |")
        lines.append("")
    text = "\n".join(lines)
    print("\n" + text)
    with open(args.output, "w") as output:
        json.dump({f"{w}|{s}": r for (w, s), r in results.items()}, output, indent=1)
    with open(args.output.replace(".json", ".md"), "w") as output:
        output.write(text + "\n")
    if args.charts:
        import charts
        note = f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, medians of {args.rounds} rounds of {args.seconds:g} s"
        for path in charts.draw(results, args.charts, note):
            print("chart", path)


if __name__ == "__main__":
    main()
