#!/usr/bin/env python3
"""Charts of a benchmark run, as SVG files next to BENCHMARKS.md (no plotting library needed): requests per
CPU-second by server and workload, latency percentiles at 500 connections, and memory per idle connection.
bench/run.py draws them at the end of every run from its results; `python3 bench/charts.py RESULTS.json`
draws them again from a saved run. The numbers stay in the tables of BENCHMARKS.md."""
import argparse
import json
import os
import statistics
from html import escape

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHARTS = os.path.join(ROOT, "bench", "charts")
COLOURS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac"]
WIDTH, HEIGHT, LEFT, TOP, BOTTOM = 900, 420, 90, 50, 90


def median(runs, key):
    return statistics.median(run[key] for run in runs)


def grouped_bars(title, unit, groups, series, value, caption=""):
    """An SVG bar chart: one cluster per group (x axis), one bar per series in it; `value(group, series)`
    gives the height or None (no bar)."""
    values = [v for g in groups for s in series if (v := value(g, s)) is not None]
    top = max(values, default=1) * 1.1 or 1
    plot_width, plot_height = WIDTH - LEFT - 20, HEIGHT - TOP - BOTTOM
    cluster = plot_width / max(1, len(groups))
    bar = cluster * 0.8 / max(1, len(series))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT + 20 * len(series) // 4}" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect width="100%" height="100%" fill="white"/>',
             f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="15">{escape(title)}</text>']
    for step in range(6):  # grid and y labels
        y = TOP + plot_height - plot_height * step / 5
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - 20}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{format_number(top * step / 5)}</text>')
    parts.append(f'<text x="16" y="{TOP + plot_height / 2}" transform="rotate(-90 16 {TOP + plot_height / 2})" '
                 f'text-anchor="middle">{escape(unit)}</text>')
    for g_index, group in enumerate(groups):
        x0 = LEFT + cluster * g_index + cluster * 0.1
        for s_index, name in enumerate(series):
            v = value(group, name)
            if v is None:
                continue
            h = plot_height * v / top
            parts.append(f'<rect x="{x0 + bar * s_index:.1f}" y="{TOP + plot_height - h:.1f}" width="{bar * 0.92:.1f}" '
                         f'height="{h:.1f}" fill="{COLOURS[s_index % len(COLOURS)]}">'
                         f'<title>{escape(name)} {escape(group)}: {format_number(v)}</title></rect>')
        parts.append(f'<text x="{x0 + cluster * 0.4:.1f}" y="{TOP + plot_height + 16}" text-anchor="middle">'
                     f'{escape(group)}</text>')
    for s_index, name in enumerate(series):  # legend, four per row
        x, y = LEFT + (s_index % 4) * 200, HEIGHT - BOTTOM + 40 + 20 * (s_index // 4)
        parts.append(f'<rect x="{x}" y="{y - 10}" width="12" height="12" fill="{COLOURS[s_index % len(COLOURS)]}"/>')
        parts.append(f'<text x="{x + 18}" y="{y}">{escape(name)}</text>')
    if caption:
        parts.append(f'<text x="{LEFT}" y="{HEIGHT + 20 * len(series) // 4 - 8}" fill="#555">{escape(caption)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def format_number(value):
    if value >= 1e6:
        return f"{value / 1e6:.1f} M"
    if value >= 1e4:
        return f"{value / 1e3:.0f} k"
    return f"{value:.3g}" if value < 10 else f"{value:.0f}"


def draw(results, output=CHARTS, note=""):
    """Writes rate-per-cpu.svg, latency-500.svg and memory-per-connection.svg from `results`
    ({(workload, server): [run, ...]}); returns their paths."""
    os.makedirs(output, exist_ok=True)
    servers = list(dict.fromkeys(server for _, server in results))
    rated = [w for w in dict.fromkeys(w for w, _ in results) if not w.startswith("idle")]
    charts = {
        "rate-per-cpu.svg": grouped_bars(
            "Requests per CPU-second of the server, by workload (higher is better)", "requests per CPU-s",
            rated, servers,
            lambda w, s: median(results[(w, s)], "rate_per_cpu") if (w, s) in results else None, note),
        "latency-500.svg": grouped_bars(
            "Latency at 500 connections, ping-pong (lower is better)", "microseconds",
            ["p50", "p99", "p999"], [s for s in servers if ("pingpong-500", s) in results],
            lambda p, s: median(results[("pingpong-500", s)], f"{p}_us"), note),
        "memory-per-connection.svg": grouped_bars(
            "Memory per idle connection, 10 000 held (lower is better)", "KiB",
            ["idle-10000"], [s for s in servers if ("idle-10000", s) in results],
            lambda w, s: median(results[(w, s)], "kib_per_connection"), note),
    }
    paths = []
    for name, svg in charts.items():
        path = os.path.join(output, name)
        with open(path, "w") as file:
            file.write(svg)
        paths.append(path)
    return paths


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", help="a results.json written by bench/run.py")
    parser.add_argument("--output", default=CHARTS)
    parser.add_argument("--note", default="", help="a line under each chart (date, machine)")
    arguments = parser.parse_args()
    with open(arguments.results) as file:
        saved = json.load(file)
    results = {tuple(key.split("|", 1)): runs for key, runs in saved.items()}
    for path in draw(results, arguments.output, arguments.note):
        print(path)


if __name__ == "__main__":
    main()
