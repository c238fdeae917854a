"""Start-up time of `execguard hunt` on a one-line file, hyperfine-style: warm-up runs, then N timed runs.

    .venv/bin/python benchmarks/startup.py --runs 20
    PYTHONPATH=/path/to/other/checkout/src .venv/bin/python benchmarks/startup.py   # another tree, same venv

Each run is a fresh `python -m execguard hunt -q -o jsonl ONE-LINE-FILE`. Prints min, median, mean and
max wall and CPU (user + system) time in seconds, and the slowest top-level imports of one run
(`python -X importtime`). On a shared machine compare CPU times, and the minimum.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LINE = (
    b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"5f0c6f8e-1",'
    b'"stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods/web/exec?command=id&stdout=true",'
    b'"verb":"create","user":{"username":"alice"},"objectRef":{"resource":"pods","namespace":"default",'
    b'"name":"web","subresource":"exec"},"responseStatus":{"code":101},'
    b'"requestReceivedTimestamp":"2026-03-02T08:00:00.000000Z","stageTimestamp":"2026-03-02T08:00:00.100000Z"}\n'
)


def run_once(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run: on a busy machine CPU time is the steadier figure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def slowest_imports(cmd: list[str], env: dict[str, str], top: int) -> list[tuple[int, str]]:
    proc = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], env=env, capture_output=True, check=False)
    rows = []
    for line in proc.stderr.decode(errors="replace").splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit() and not parts[2].startswith("  "):  # top-level imports only
            rows.append((int(parts[1]), parts[2].strip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--top", type=int, default=8, help="Slowest top-level imports to list.")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp) / "one.log"
        one.write_bytes(LINE)
        cmd = [sys.executable, "-m", "execguard", "hunt", "-q", "-o", "jsonl", str(one)]
        env = dict(os.environ)
        walls, cpus = [], []
        for i in range(args.warmup + args.runs):
            wall, cpu = run_once(cmd, env)
            if i >= args.warmup:
                walls.append(wall)
                cpus.append(cpu)
        print(f"execguard hunt on one line, {args.runs} runs:")
        for label, xs in (("wall", walls), ("cpu", cpus)):
            print(f"  {label}: min {min(xs):.3f} s, median {statistics.median(xs):.3f} s, "
                  f"mean {statistics.fmean(xs):.3f} s, max {max(xs):.3f} s")
        print("slowest top-level imports (ms, one run):")
        for us, name in slowest_imports(cmd, env, args.top):
            print(f"  {us / 1000:8.1f}  {name}")


if __name__ == "__main__":
    main()
