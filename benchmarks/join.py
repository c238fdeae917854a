#!/usr/bin/env python3
"""What the join (docs/node.md) costs: a hunt of an audit log, docker events and a Tetragon export, joined and not.

    python benchmarks/join.py --events 20000 --runs 3

Writes ``execguard simulate --scenario all --seed 1 --events N`` to benchmarks/out/join-N/ once, then runs
``execguard hunt -j 1 -q -o jsonl`` over k8s-audit.jsonl, docker-events.jsonl and tetragon.jsonl with and
without ``--no-join``, alternating, each in a fresh child (peak RSS from getrusage(RUSAGE_CHILDREN)), and
prints the medians and their ratio. Same run, same machine: trust the ratio more than the seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).parent / "out"


def measure(cmd: list[str]) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of one run, measured in a child of its own."""
    probe = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True); "
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, check=True, text=True).stdout.split()
    return float(out[0]), int(out[1]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    exe = str(Path(sys.executable).parent / "execguard")
    d = OUT / f"join-{args.events}"
    if not (d / "tetragon.jsonl").exists():
        subprocess.run([exe, "simulate", "--scenario", "all", "--seed", "1", "--events", str(args.events), "--out", str(d)],
                       check=True, stdout=subprocess.DEVNULL)
    files = [str(d / n) for n in ("k8s-audit.jsonl", "docker-events.jsonl", "tetragon.jsonl")]
    size = sum(os.path.getsize(f) for f in files) / 1e6
    lines = sum(Path(f).read_bytes().count(b"\n") for f in files)
    print(f"{d.name}: {size:.1f} MB, {lines} lines (k8s-audit, docker-events, tetragon); load {os.getloadavg()[0]:.1f}")
    found: dict[str, list[tuple[float, float]]] = {"joined": [], "--no-join": []}
    for _ in range(args.runs):
        for label, extra in (("joined", []), ("--no-join", ["--no-join"])):
            found[label].append(measure([exe, "hunt", "-j", "1", "-q", "-o", "jsonl", *extra, *files]))
    print(f"{'run':<12}{'seconds':>9}{'lines/s':>10}{'peak RSS MB':>13}")
    med = {}
    for label, runs in found.items():
        secs, rss = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        med[label] = secs
        print(f"{label:<12}{secs:>9.2f}{lines / secs:>10.0f}{rss:>13.0f}")
    print(f"joined / --no-join: {med['joined'] / med['--no-join']:.2f}x; load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
