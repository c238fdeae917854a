"""Start-up time of `execguard hunt` on a one-line file, hyperfine-style: warm-up runs, then N timed runs.

    .venv/bin/python benchmarks/startup.py --runs 20
    PYTHONPATH=/path/to/other/checkout/src .venv/bin/python benchmarks/startup.py   # another tree, same venv
    .venv/bin/python benchmarks/startup.py --compare /work/main/src src             # trees interleaved, run by run

Each run is a fresh `python -m execguard hunt -q -o jsonl ONE-LINE-FILE`. Prints min, median, mean and
max wall and CPU (user + system) time in seconds; where the time goes (the phases below, median of
--phase-runs in-process runs); and the slowest top-level imports of one run (`python -X importtime`).
On a shared machine compare CPU times, and the minimum; with --compare the trees take turns, so a busy
minute costs each the same. Set PYTHONDONTWRITEBYTECODE off (and compile the tree once): otherwise
every run compiles every module again.
"""

from __future__ import annotations

import argparse
import json
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

# One hunt in one process, timed by phase in CPU seconds (steadier than wall on a shared machine): typer's
# import, execguard's cli import, typer's share of the run (building the command, parsing and coercing its
# parameters: where typer >= 0.2x imports pydantic), the rule load (the compiled-rule cache) and the rest
# of the hunt. Prints one JSON object.
PHASES = r"""
import functools, json, sys, time
t0 = time.process_time()
import typer, typer.main
t1 = time.process_time()
import execguard.cli, execguard.cli.hunt as h, execguard.pipeline.rules as r
t2 = time.process_time()
spent = {"hunt": 0.0, "rules": 0.0}
def timed(fn, key):
    @functools.wraps(fn)
    def run(*a, **k):
        start = time.process_time()
        try:
            return fn(*a, **k)
        finally:
            spent[key] += time.process_time() - start
    return run
h.hunt = timed(h.hunt, "hunt")
r.load = timed(r.load, "rules")
try:
    execguard.cli.app(sys.argv[1:], prog_name="execguard")
except SystemExit:
    pass
t3 = time.process_time()
print(json.dumps({
    "import typer": t1 - t0, "import execguard.cli": t2 - t1, "typer: build, parse, coerce": t3 - t2 - spent["hunt"],
    "hunt: rule load": spent["rules"], "hunt: the rest": spent["hunt"] - spent["rules"],
    "pydantic imported": "pydantic" in sys.modules,
}), file=sys.__stderr__)
"""


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


def phases(one: Path, env: dict[str, str], runs: int) -> None:
    """Median CPU seconds of each phase over in-process runs, and its share of their sum (interpreter start not counted)."""
    rows: list[dict[str, float]] = []
    pydantic = False
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, "-c", PHASES, "hunt", "-q", "-o", "jsonl", str(one)], env=env, capture_output=True, check=False
        )
        got = json.loads(proc.stderr.decode().strip().splitlines()[-1])
        pydantic = got.pop("pydantic imported") or pydantic
        rows.append(got)
    total = statistics.median(sum(r.values()) for r in rows)
    print(f"  where the CPU time goes after the interpreter's own start (median of {runs}; pydantic imported: "
          f"{'yes' if pydantic else 'no'}):")
    for name in rows[0]:
        t = statistics.median(r[name] for r in rows)
        print(f"    {name:30} {t * 1000:7.1f} ms  {t / total:4.0%}")
    print(f"    {'sum':30} {total * 1000:7.1f} ms")


def summary(label: str, xs: list[float]) -> str:
    return (f"  {label}: min {min(xs):.3f} s, median {statistics.median(xs):.3f} s, "
            f"mean {statistics.fmean(xs):.3f} s, max {max(xs):.3f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--top", type=int, default=8, help="Slowest top-level imports to list.")
    ap.add_argument("--phase-runs", type=int, default=5, help="In-process runs timed by phase; 0 = none.")
    ap.add_argument("--compare", nargs="+", metavar="SRC", help="Source trees (put first on PYTHONPATH) to run in turn.")
    args = ap.parse_args()
    trees = args.compare or [None]
    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp) / "one.log"
        one.write_bytes(LINE)
        cmd = [sys.executable, "-m", "execguard", "hunt", "-q", "-o", "jsonl", str(one)]
        envs = []
        for tree in trees:
            env = dict(os.environ)
            if tree is not None:
                env["PYTHONPATH"] = os.pathsep.join([str(Path(tree).resolve()), *filter(None, [env.get("PYTHONPATH")])])
            envs.append(env)
        times: list[tuple[list[float], list[float]]] = [([], []) for _ in trees]
        for i in range(args.warmup + args.runs):
            for env, (walls, cpus) in zip(envs, times, strict=True):
                wall, cpu = run_once(cmd, env)
                if i >= args.warmup:
                    walls.append(wall)
                    cpus.append(cpu)
        for tree, env, (walls, cpus) in zip(trees, envs, times, strict=True):
            print(f"execguard hunt on one line, {args.runs} runs{f' ({tree})' if tree else ''}:")
            print(summary("wall", walls))
            print(summary("cpu", cpus))
            if args.phase_runs:
                phases(one, env, args.phase_runs)
            if args.top:
                print("  slowest top-level imports (ms, one run):")
                for us, name in slowest_imports(cmd, env, args.top):
                    print(f"    {us / 1000:8.1f}  {name}")


if __name__ == "__main__":
    main()
