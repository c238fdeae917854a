"""The reading side alone: CPU seconds to turn a file's bytes into Events, as a `-j 1` hunt reads it.

    .venv/bin/python benchmarks/read_bench.py benchmarks/out/sim-40M.log --repeat 5
    PYTHONPATH=/path/to/other/checkout/src .venv/bin/python benchmarks/read_bench.py FILE   # another tree

The reader gets the prefilter literals of the built-in rules with the join on (what `hunt` hands it), and
its events are iterated and counted; no rule runs. Each repeat is a fresh process (the sources' caches start
empty, as in a hunt); rules are loaded before the clock starts. Prints the CPU time (user+sys) of each repeat,
the median, events and lines parsed, and with --digest a hash of every event's fields, so two trees can be
checked to build the same events.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import statistics
import subprocess
import sys
from dataclasses import asdict


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def one(files: list[str], digest: bool) -> None:
    from execguard.engine.match import Engine
    from execguard.pipeline import prefilter, rules
    from execguard.sources.reader import Reader

    engine = Engine(rules.load())
    engine.join = True
    literals = prefilter.literals(engine)
    reader = Reader(literals=literals)
    t0 = cpu()
    if digest:
        h = hashlib.sha256()
        for ev in reader.read(files):
            h.update(repr(asdict(ev)).encode())
        print(cpu() - t0, reader.stats.events, reader.stats.parsed, reader.stats.lines, h.hexdigest())
    else:
        n = sum(1 for _ in reader.read(files))
        print(cpu() - t0, n, reader.stats.parsed, reader.stats.lines, "-")


def run(args: list[str]) -> list[str]:
    return subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True).stdout.split()


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--digest", action="store_true", help="also a run that hashes every event's fields (not timed)")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        one(args.files, args.digest)
        return
    times: list[float] = []
    out: list[str] = []
    for _ in range(args.repeat):
        out = run(["--one", *args.files])
        times.append(float(out[0]))
    print(f"{','.join(args.files)}: cpu s {' '.join(f'{t:.3f}' for t in times)} median {statistics.median(times):.3f}"
          f" events {out[1]} parsed {out[2]} lines {out[3]}")
    if args.digest:
        out = run(["--one", "--digest", *args.files])
        print("digest", out[4])


if __name__ == "__main__":
    main()
