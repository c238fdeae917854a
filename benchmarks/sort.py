#!/usr/bin/env python3
"""Time and peak memory of a hunt with many alerts: --sort input (streamed) vs time and severity (spilled).

    python benchmarks/sort.py --alerts 200000

Writes one Kubernetes audit file of N pods/exec events whose times are shuffled (so the time sort
has real work), then runs ``execguard hunt -o jsonl -q -j 1 --sort S`` for each S and the default
table (``-o table``, at most 2000 rows kept). Peak RSS of the hunt process comes from
getrusage(RUSAGE_CHILDREN), each run in a fresh child so the figure is that run's alone.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).parent / "out"


def exec_line(i: int, second: int) -> str:
    t = f"2026-11-29T{second // 3600 % 24:02d}:{second // 60 % 60:02d}:{second % 60:02d}.{i % 1000000:06d}Z"
    return json.dumps({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": f"a-{i}", "stage": "ResponseStarted", "verb": "create",
        "requestURI": f"/api/v1/namespaces/ns{i % 50}/pods/web-{i}/exec?command=id&container=app",
        "user": {"username": f"user{i % 200}", "groups": ["system:authenticated"]}, "sourceIPs": ["10.0.0.1"],
        "objectRef": {"resource": "pods", "subresource": "exec", "namespace": f"ns{i % 50}", "name": f"web-{i}"},
        "responseStatus": {"code": 101}, "stageTimestamp": t,
    })  # fmt: skip


def measure(cmd: list[str]) -> tuple[float, float, int]:
    """Seconds, peak RSS (MB) and stdout bytes of one run, measured in a child of its own."""
    probe = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, check=True); "
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, len(p.stdout))"
    )
    out = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, check=True, text=True).stdout.split()
    return float(out[0]), int(out[1]) / 1024, int(out[2])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--alerts", type=int, default=200_000)
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    path = OUT / f"sort-{args.alerts}.log"
    if not path.exists():
        seconds = list(range(args.alerts))
        random.Random(1).shuffle(seconds)
        path.write_text("".join(exec_line(i, s) + "\n" for i, s in enumerate(seconds)))
    exe = str(Path(sys.executable).parent / "execguard")
    print(f"{path.name}: {path.stat().st_size / 1e6:.0f} MB, {args.alerts} exec events, times shuffled")
    print(f"{'run':<28}{'seconds':>9}{'peak RSS MB':>13}{'stdout MB':>11}")
    for label, extra in (
        ("-o jsonl --sort input", ["-o", "jsonl", "--sort", "input"]),
        ("-o jsonl --sort time", ["-o", "jsonl", "--sort", "time"]),
        ("-o jsonl --sort severity", ["-o", "jsonl", "--sort", "severity"]),
        ("-o table (2000 kept)", []),
    ):
        secs, rss, size = measure([exe, "hunt", "-q", "-j", "1", *extra, str(path)])
        print(f"{label:<28}{secs:>9.1f}{rss:>13.0f}{size / 1e6:>11.1f}")


if __name__ == "__main__":
    main()
