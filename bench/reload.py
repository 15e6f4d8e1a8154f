#!/usr/bin/env python3
"""What a reload costs clients: bench/loadgen's churn (connect, one 64-byte request, echo, close; 50 at once)
against evserved for SECONDS, once undisturbed and once with a SIGHUP every INTERVAL seconds (each starts a new
process that takes the socket over while the old one drains), without and with --workers 2. Prints, per run:
connections served, errors (refused, reset or short: the loadgen counts them), rate, p50/p99/p999 latency and
the longest one, interleaved over ROUNDS; `make bench-reload` runs it. Release build; 127.0.0.1 only.
"""
import argparse
import ctypes
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import OUT, ROOT, build  # noqa: E402

PR_SET_CHILD_SUBREAPER = 36


def read_pid(path):
    try:
        with open(path) as file:
            return int(file.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def run(workers, reloads, seconds, interval):
    """One run: the loadgen's JSON figures, plus how many reloads happened."""
    folder = tempfile.mkdtemp(prefix="evs-reload-")
    pid_file = os.path.join(folder, "evserved.pid")
    evserved = os.path.join(ROOT, ".build", "release", "evserved")
    command = [evserved, "--listen", "tcp://127.0.0.1:0", "--loops", "1", "--log-level", "error",
               "--pid-file", pid_file, *(["--workers", str(workers)] if workers else [])]
    daemon = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    port = int(daemon.stdout.readline().strip().rsplit(":", 1)[1])
    loadgen = subprocess.Popen([os.path.join(OUT, "loadgen"), "churn", "127.0.0.1", str(port), "50", str(seconds)],
                               stdout=subprocess.PIPE, text=True)
    done = 0
    started = time.monotonic()
    while reloads and loadgen.poll() is None and time.monotonic() - started < seconds - interval:
        time.sleep(interval)
        pid = read_pid(pid_file)
        os.kill(pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while workers == 0 and read_pid(pid_file) in (None, pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        done += 1
    result = json.loads(loadgen.communicate()[0].strip().splitlines()[-1])
    last = read_pid(pid_file)
    os.kill(last, signal.SIGTERM)
    reap_everything()
    result["reloads"] = done
    return result


def reap_everything():
    """Waits for every child (the daemons of each generation, adopted as their subreaper)."""
    while True:
        try:
            os.wait()
        except ChildProcessError:
            return


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--interval", type=float, default=2)
    parser.add_argument("--no-build", action="store_true")
    arguments = parser.parse_args()
    if not arguments.no_build:
        build(swift=False)
        subprocess.run(["swift", "build", "-c", "release", "--product", "evserved"], cwd=ROOT, check=True)
    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    cases = [(workers, reloads) for workers in (0, 2) for reloads in (False, True)]
    results = {case: [] for case in cases}
    for _ in range(arguments.rounds):
        for case in cases:
            results[case].append(run(*case, arguments.seconds, arguments.interval))
    print("| workers | SIGHUP every | reloads | connections | errors | conn/s | p50 µs | p99 µs | p999 µs |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (workers, reloads), runs in results.items():
        median = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
        print(f"| {workers} | {f'{arguments.interval:g} s' if reloads else 'never'} | "
              f"{sum(r['reloads'] for r in runs)} | {sum(r['requests'] for r in runs)} | "
              f"{sum(r['errors'] for r in runs)} | {median('rate'):.0f} | {median('p50_us'):.0f} | "
              f"{median('p99_us'):.0f} | {median('p999_us'):.0f} |")


if __name__ == "__main__":
    main()
